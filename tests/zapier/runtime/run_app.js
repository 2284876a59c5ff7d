'use strict';
// Runs an exported TemplateTo Zapier app in Zapier's own runtime (zapier-platform-core's
// createAppTester) and prints what each step gave, as JSON, for the Python test to check.
// Usage: TEMPLATETO_API_KEY=... node run_app.js APP_DIR SCENARIO [JSON_INPUT]
process.env.NODE_ENV = 'test';
const path = require('path');
const zapier = require('zapier-platform-core');
const schema = require('zapier-platform-schema');
const { recurseCleanFuncs } = require('zapier-platform-core/src/tools/cleaner');

const [appDir, scenario, rawInput] = process.argv.slice(2);
const input = rawInput ? JSON.parse(rawInput) : {};
const app = require(path.resolve(appDir, 'index.js'));
const hydrators = require(path.resolve(appDir, 'hydrators.js'));
const appTester = zapier.createAppTester(app);
// No TEMPLATETO_API_KEY: a connection without a key.
const authData = process.env.TEMPLATETO_API_KEY ? { api_key: process.env.TEMPLATETO_API_KEY } : {};
// Zapier keeps a paging trigger's cursor on its own servers, out of reach here: triggers run in
// the runtime with a z whose cursor is kept in this process instead.
let storedCursor = null;
const cursor = {
  get: async () => storedCursor,
  set: async (value) => {
    if (typeof value !== 'string') throw new TypeError('cursor value must be a string');
    storedCursor = value;
  },
};
const perform = (key, meta) =>
  appTester((z, bundle) => app.triggers[key].operation.perform({ ...z, cursor }, bundle), {
    authData,
    meta,
  });

// A file pointer (z.dehydrateFile) as Zapier follows it: the hydrator's request, with the
// pointer's inputData (z.stashFile, which the hydrator then calls, needs Zapier's servers).
const followFile = async (pointer) => {
  const { method, bundle } = JSON.parse(pointer.split('|||')[1]);
  if (method !== 'hydrators.downloadFile') throw new Error(`unexpected hydrator ${method}`);
  const file = await appTester(hydrators.fetchFile, { authData, inputData: bundle });
  const bytes = await file.buffer();
  return {
    status: file.status,
    contentType: file.headers.get('content-type'),
    disposition: file.headers.get('content-disposition'),
    size: bytes.length,
    // The start is enough to tell a PDF; a TXT is short.
    text: bytes.subarray(0, 200).toString('utf8'),
  };
};

const schemaErrors = () => {
  const errors = schema.validateAppDefinition(recurseCleanFuncs(app)).errors.map((e) => e.stack);
  const perOperation = [
    ['triggers', 'TriggerSchema'],
    ['creates', 'CreateSchema'],
    ['searches', 'SearchSchema'],
  ];
  for (const [group, schemaName] of perOperation) {
    const operationSchema = require(`zapier-platform-schema/lib/schemas/${schemaName}`);
    for (const operation of Object.values(app[group])) {
      const result = operationSchema.validate(recurseCleanFuncs(operation));
      errors.push(...result.errors.map((e) => `${group}.${operation.key}: ${e.stack}`));
      if (!operation.display.hidden && !operation.operation.sample) {
        errors.push(`${group}.${operation.key}: no sample`);
      }
      for (const field of operation.operation.inputFields || []) {
        if (field.dynamic && !app.triggers[field.dynamic.split('.')[0]]) {
          errors.push(`${group}.${operation.key}: dynamic ${field.dynamic} has no trigger`);
        }
      }
    }
  }
  return errors;
};

const run = async () => {
  switch (scenario) {
    case 'validate':
      return { errors: schemaErrors() };
    case 'auth':
      return appTester(app.authentication.test, { authData });
    case 'trigger':
      return perform(input.key, { page: 0, limit: 10 });
    case 'allPages': {
      // As a dropdown's "load more" does: pages until one comes back empty.
      const items = [];
      for (let page = 0; page < 1000; page += 1) {
        const batch = await perform(input.key, { page, limit: input.limit });
        if (batch.length === 0) return items;
        items.push(...batch);
      }
      throw new Error('no end to the pages');
    }
    case 'performList':
      return appTester(app.triggers[input.key].operation.performList, {
        authData,
        meta: { page: 0, limit: 10 },
      });
    case 'create': {
      const document = await appTester(app.creates.create_file.operation.perform, {
        authData,
        inputData: input,
      });
      return { document, file: await followFile(document.file) };
    }
    case 'newDocuments': {
      // Polled (performList), then as a REST hook delivers one (perform): each with its file.
      const trigger = app.triggers.new_document.operation;
      const polled = await appTester(trigger.performList, { authData, meta: { page: 0, limit: 10 } });
      const delivered = await appTester(trigger.perform, { authData, cleanedRequest: input.item });
      return {
        polled: await Promise.all(polled.map(async (item) => ({ item, file: await followFile(item.file) }))),
        delivered: { item: delivered[0], file: await followFile(delivered[0].file) },
      };
    }
    case 'definition':
      return recurseCleanFuncs(app);
    case 'keyHeaders':
      // Which addresses the app's beforeRequest gives the key to.
      return input.urls.map((address) => {
        const request = app.beforeRequest[0]({ url: address, headers: {} }, null, { authData });
        return { url: address, key: 'X-Api-Key' in request.headers };
      });
    case 'post':
      // A request the app makes to an address (a file link, say), through its beforeRequest.
      return appTester(
        async (z) => {
          const response = await z.request({ url: input.url, method: 'POST', body: {} });
          return { status: response.status };
        },
        { authData },
      );
    case 'search':
      return appTester(app.searches[input.key].operation.perform, {
        authData,
        inputData: input.inputData,
      });
    case 'subscribe': {
      const subscribeData = await appTester(app.triggers[input.key].operation.performSubscribe, {
        authData,
        targetUrl: input.targetUrl,
      });
      const unsubscribed = await appTester(
        app.triggers[input.key].operation.performUnsubscribe,
        { authData, subscribeData },
      );
      return { subscribeData, unsubscribed };
    }
    case 'subscribeOnly':
      return appTester(app.triggers[input.key].operation.performSubscribe, {
        authData,
        targetUrl: input.targetUrl,
      });
    case 'restHook': {
      // What a REST hook trigger gives for one delivery (perform, with Zapier's cleanedRequest)
      // and when polled for samples (performList).
      const operation = app.triggers[input.key].operation;
      const delivered = await appTester(operation.perform, {
        authData,
        cleanedRequest: input.cleanedRequest,
      });
      const listed = await appTester(operation.performList, {
        authData,
        meta: { page: 0, limit: 10 },
      });
      return { delivered, listed };
    }
    case 'dataField': {
      const dynamic = app.creates.create_file.operation.inputFields.find(
        (field) => typeof field === 'function',
      );
      return appTester(dynamic, { authData, inputData: input });
    }
    case 'unsubscribe':
      return appTester(app.triggers[input.key].operation.performUnsubscribe, {
        authData,
        subscribeData: { id: input.id },
      });
    default:
      throw new Error(`unknown scenario ${scenario}`);
  }
};

run()
  .then((result) => console.log(JSON.stringify({ ok: true, result })))
  .catch((error) =>
    console.log(
      JSON.stringify({ ok: false, name: error.name, message: error.message, status: error.status }),
    ),
  );
