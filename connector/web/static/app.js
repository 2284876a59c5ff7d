// The API keys page: dialogs, forms sent in the background, and Copy. Plain JavaScript, no
// libraries; without it the forms still work as ordinary posts.
'use strict';

const byId = (id) => document.getElementById(id);

function say(element, text) {
  element.textContent = text;
  element.hidden = !text;
}

function showSecret(name, value) {
  say(byId('secret-name'), name);
  byId('secret-value').value = value;
  byId('copied').textContent = '';
  byId('secret').hidden = false;
  byId('copy').focus();
}

document.addEventListener('click', (event) => {
  const opener = event.target.closest('[data-open]');
  if (opener) {
    const dialog = byId(opener.dataset.open);
    dialog.querySelector('.form-error').hidden = true;
    dialog.showModal();
    return;
  }
  const closer = event.target.closest('[data-close]');
  if (closer) {
    closer.closest('dialog').close();
    return;
  }
  if (event.target.id === 'copy') {
    const value = byId('secret-value').value;
    navigator.clipboard.writeText(value).then(
      () => { byId('copied').textContent = 'Copied to the clipboard.'; },
      () => {
        byId('secret-value').select();
        byId('copied').textContent = 'Copying was refused: press Ctrl+C (or ⌘C) to copy the selected value.';
      },
    );
  }
});

document.addEventListener('submit', async (event) => {
  const form = event.target.closest('form[data-background]');
  if (!form) return;
  event.preventDefault();
  const dialog = form.closest('dialog');
  const problem = form.querySelector('.form-error');
  const button = form.querySelector('[type=submit]');
  button.disabled = true;
  try {
    const response = await fetch(form.action, {
      method: 'POST',
      body: new FormData(form),
      headers: { Accept: 'application/json' },
      credentials: 'same-origin',
    });
    const answer = await response.json();
    if (!response.ok) {
      say(problem, answer.message);
      return;
    }
    dialog.close();
    form.reset();
    byId('key-rows').innerHTML = answer.rows;
    say(byId('failure'), '');
    say(byId('status'), answer.message);
    if (answer.value) showSecret(answer.name, answer.value);
  } catch (failure) {
    say(problem, 'The request did not go through. Check your connection and try again.');
  } finally {
    button.disabled = false;
  }
});
