//! The ledger's schema as an ordered list of migrations, applied by `PRAGMA user_version`.
//!
//! Invariant: a migration, once released, never changes; a new one is appended. Triggers make
//! `order_events` and `closes` append-only and `paid` terminal in the database itself, so no
//! code path can break these rules.

/// Migrations in order; migration `i` brings the schema to version `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE orders (
    id                INTEGER PRIMARY KEY,
    order_no          TEXT    NOT NULL UNIQUE,
    provider_id       TEXT    NOT NULL,
    provider_kind     TEXT    NOT NULL,
    channel           TEXT    NOT NULL,
    amount_fen        INTEGER NOT NULL CHECK (amount_fen > 0),
    payable_fen       INTEGER,
    paid_fen          INTEGER,
    status            TEXT    NOT NULL,
    provider_order_id TEXT,
    subject           TEXT    NOT NULL DEFAULT '',
    operator          TEXT    NOT NULL DEFAULT '',
    demo              INTEGER NOT NULL DEFAULT 0,
    created_at        INTEGER NOT NULL,
    expires_at        INTEGER,
    paid_at           INTEGER,
    updated_at        INTEGER NOT NULL,
    late_paid         INTEGER NOT NULL DEFAULT 0,
    amount_mismatch   INTEGER NOT NULL DEFAULT 0,
    message           TEXT
);
CREATE INDEX orders_by_created ON orders (created_at);
CREATE INDEX orders_open ON orders (status) WHERE status IN ('creating', 'pending', 'confirming');

CREATE TABLE order_events (
    id          INTEGER PRIMARY KEY,
    order_id    INTEGER NOT NULL REFERENCES orders (id),
    at          INTEGER NOT NULL,
    kind        TEXT    NOT NULL,
    from_status TEXT,
    to_status   TEXT,
    detail      TEXT    NOT NULL DEFAULT '',
    raw         TEXT
);
CREATE INDEX order_events_by_order ON order_events (order_id, id);

CREATE TRIGGER order_events_append_only_update BEFORE UPDATE ON order_events
BEGIN SELECT RAISE(ABORT, 'order_events is append-only'); END;
CREATE TRIGGER order_events_append_only_delete BEFORE DELETE ON order_events
BEGIN SELECT RAISE(ABORT, 'order_events is append-only'); END;
CREATE TRIGGER orders_paid_is_terminal BEFORE UPDATE OF status ON orders
WHEN OLD.status = 'paid' AND NEW.status <> 'paid'
BEGIN SELECT RAISE(ABORT, 'a paid order never changes status'); END;
CREATE TRIGGER orders_never_deleted BEFORE DELETE ON orders
BEGIN SELECT RAISE(ABORT, 'orders are never deleted'); END;
"#,
    // 2: day close (交班/日结) and the index the closes need.
    //
    // `closes.id` is the close number staff see; `summary` is the JSON snapshot of the figures
    // at close time, so a close never changes even when its orders later do. A close covers
    // [from_ms, to_ms) and the next one starts where it ended.
    //
    // Money in a close is counted by payment time, hence `orders_by_paid`. It is partial
    // (only paid orders have a paid_at), and SQLite uses it for any `paid_at >= ?` range,
    // which implies `paid_at IS NOT NULL`. The day summary and the history use the existing
    // `orders_by_created`, whose rowid suffix also serves `ORDER BY created_at DESC, id DESC`
    // without a sort.
    r#"
CREATE TABLE closes (
    id        INTEGER PRIMARY KEY,
    closed_at INTEGER NOT NULL,
    from_ms   INTEGER NOT NULL,
    to_ms     INTEGER NOT NULL CHECK (to_ms >= from_ms),
    operator  TEXT    NOT NULL DEFAULT '',
    summary   TEXT    NOT NULL
);
CREATE INDEX orders_by_paid ON orders (paid_at) WHERE paid_at IS NOT NULL;

CREATE TRIGGER closes_append_only_update BEFORE UPDATE ON closes
BEGIN SELECT RAISE(ABORT, 'a close never changes'); END;
CREATE TRIGGER closes_append_only_delete BEFORE DELETE ON closes
BEGIN SELECT RAISE(ABORT, 'a close is never deleted'); END;
"#,
];
