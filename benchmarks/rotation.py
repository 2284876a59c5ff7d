"""The delivery loop's look for keys due for rotation (every 30 s), on 10,000 live keys whose
accounts all have a maximum age, none of them due: the look's cost as a ratio to the floor of
reading the same keys and their values in one plain query, in the same run.

    python -m benchmarks.rotation
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import insert, select

from benchmarks import live
from connector import keys
from connector.key_policy import KeyPolicyChange
from connector.models import ApiKey, KeyValue, new_id
from connector.rotation import CHECK_EVERY

ACCOUNTS, KEYS_PER_ACCOUNT, ROUNDS = 100, 100, 15
TARGET_SHARE = 0.01  # of the 30 s between looks


def main() -> None:
    with (
        live.workspace("sqlite") as (work, database_url),
        live.bridge_services(database_url, work / "data") as services,
    ):
        now = datetime.now(UTC)
        rows, values = [], []
        for number in range(ACCOUNTS):
            account = services.accounts.create(f"Account {number}")
            services.key_policies.change(account.id, KeyPolicyChange(max_age_days=90))
            for index in range(KEYS_PER_ACCOUNT):
                key_id = new_id("key_")
                rows.append(
                    {"id": key_id, "account_id": account.id, "name": f"Key {index}",
                     "permission": "standard", "created_at": now}
                )  # fmt: skip
                fresh = keys.NewKeyValue.generate()
                values.append(
                    {"key_id": key_id, "fingerprint": fresh.fingerprint, "last4": fresh.last4,
                     "issued_at": now}
                )  # fmt: skip
        with services.db.transaction() as session:
            session.execute(insert(ApiKey), rows)
            session.execute(insert(KeyValue), values)

        def floor() -> object:
            with services.db.transaction() as session:
                return session.execute(
                    select(ApiKey.id, ApiKey.created_at, KeyValue.id).join(KeyValue)
                ).all()

        def look() -> object:
            assert services.rotation.tell_due_keys() == 0
            return None

        look_median, floor_median = live.interleaved(look, floor, rounds=ROUNDS, calls=1)

    ratio, share = look_median / floor_median, look_median / CHECK_EVERY.total_seconds()
    total = ACCOUNTS * KEYS_PER_ACCOUNT
    live.table("measurement | median | ratio to floor", [
        [f"floor: one query for {total:,} keys and their values", f"{floor_median * 1e3:.1f} ms",
         "1.00"],
        [f"look for due keys, {total:,} keys, none due", f"{look_median * 1e3:.1f} ms",
         f"{ratio:.1f}"],
    ])  # fmt: skip
    verdict = "within" if share <= TARGET_SHARE else "OVER"
    print(f"\na look takes {share:.2%} of the {CHECK_EVERY.total_seconds():.0f} s between looks: "
          f"{verdict} the target of {TARGET_SHARE:.0%}")  # fmt: skip


if __name__ == "__main__":
    main()
