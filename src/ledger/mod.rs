//! The local ledger (SQLite through rusqlite): every order and an append-only event log.
//!
//! Invariants kept here:
//! - an order row is committed (WAL, `synchronous=FULL`) by [`Ledger::insert_order`] before
//!   the service lets its create request leave the machine;
//! - every status change is one transaction that updates `orders` and appends an
//!   `order_events` row with the provider's raw answer; the change itself is decided by
//!   [`PaymentStatus::apply`] on the row read inside that transaction;
//! - the ledger never sees a secret: callers pass provider answers, never requests;
//! - closes (交班/日结, see [`report`]) are append-only, and no order is recorded as created
//!   or paid inside a window that is already closed: `created_at` and `paid_at` are never
//!   earlier than the end of the last close. A payment recorded while a close runs (its
//!   answer timed a few ms before the close, its write queued behind it) therefore falls into
//!   the next close instead of being missed by both;
//! - one till process per ledger, a checked file at start and daily backups ([`survive`]);
//!   a full disk or a locked file is a [`LedgerError`] with words for staff, never a panic,
//!   and a write that failed changed nothing (every write is one transaction).

mod report;
mod schema;
pub mod survive;

use std::path::Path;

use rusqlite::{Connection, OptionalExtension as _, Row, TransactionBehavior, params};

pub use self::report::{
    Close, DaySummary, Figures, FlaggedOrder, GroupTotals, HistoryChoices, HistoryFilter,
    HourBucket,
};

use crate::model::{Channel, Fen, OrderNo, PaymentStatus, ProviderState};

/// Ledger failures. The message names the file where one is involved.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// SQLite refused.
    #[error("ledger database error: {0}")]
    Sqlite(rusqlite::Error),
    /// The disk (or the database's size limit) is full: nothing was written.
    #[error(
        "磁盘已满，账本无法写入 / the disk holding the ledger is full: nothing was written; \
         free some space and try again"
    )]
    DiskFull,
    /// Another program holds the database's write lock longer than the busy timeout.
    #[error(
        "账本被其他程序锁定 / the ledger is locked by another program (a second qrtill, a \
         backup tool or a database viewer): nothing was written; close that program and try again"
    )]
    Busy,
    /// Another till process uses this ledger.
    #[error(
        "账本正被另一个 qrtill 使用 / the ledger {path} is in use by another qrtill{}: \
         only one till may run per ledger; close the other one first",
        pid.map(|pid| format!(" (pid {pid})")).unwrap_or_default()
    )]
    InUse {
        /// The ledger file.
        path: String,
        /// The other process, when its lock file says.
        pid: Option<u32>,
    },
    /// The integrity check failed.
    #[error(
        "账本文件已损坏 / the ledger {path} failed its integrity check ({report}): qrtill will \
         not use it. Close qrtill, move this file (and any -wal/-shm beside it) aside, and copy \
         the newest backup from {backups} in its place under the same name"
    )]
    Damaged {
        /// The ledger file.
        path: String,
        /// What SQLite found.
        report: String,
        /// The backups folder.
        backups: String,
    },
    /// A daily backup could not be made.
    #[error("cannot write the ledger backup {path}: {message}")]
    Backup {
        /// The backup file (or folder).
        path: String,
        /// Why.
        message: String,
    },
    /// A file beside the ledger (its lock file) could not be used.
    #[error("cannot use {path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// The file could not be opened.
    #[error("cannot open the ledger {path}: {source}")]
    Open {
        /// The file.
        path: String,
        /// Why.
        source: rusqlite::Error,
    },
    /// The order number is already taken.
    #[error("order number {0} already exists in the ledger")]
    Duplicate(String),
    /// No such order.
    #[error("no order {0} in the ledger")]
    NotFound(String),
    /// A stored value does not parse (the file was edited by hand or is damaged).
    #[error("ledger row is damaged: {0}")]
    Corrupt(String),
    /// A close was asked for at a moment before the end of the last close: the computer's
    /// clock went back. Closing then would leave a window counted twice.
    #[error(
        "cannot close at {}: close no. {number} already ends at {}; check the computer's clock",
        crate::day::local_time(&chrono::Local, *now),
        crate::day::local_time(&chrono::Local, *last_to)
    )]
    ClockBehindLastClose {
        /// The last close.
        number: i64,
        /// Where it ends, Unix ms.
        last_to: i64,
        /// The time of the refused close, Unix ms.
        now: i64,
    },
}

impl From<rusqlite::Error> for LedgerError {
    /// SQLite's full-disk and lock codes become messages staff can act on.
    fn from(err: rusqlite::Error) -> Self {
        match err.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DiskFull) => LedgerError::DiskFull,
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                LedgerError::Busy
            }
            _ => LedgerError::Sqlite(err),
        }
    }
}

/// One order as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderRow {
    /// Our order number.
    pub order_no: OrderNo,
    /// The configured provider account.
    pub provider_id: String,
    /// Its protocol.
    pub provider_kind: String,
    /// The wallet.
    pub channel: Channel,
    /// The order's amount.
    pub amount: Fen,
    /// What the customer must pay, when the provider set it.
    pub payable: Option<Fen>,
    /// What was paid.
    pub paid: Option<Fen>,
    /// Where it is.
    pub status: PaymentStatus,
    /// The provider's id.
    pub provider_order_id: Option<String>,
    /// The title.
    pub subject: String,
    /// Who took the sale.
    pub operator: String,
    /// Made in demo mode against the sandbox: not a real sale.
    pub demo: bool,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub expires_at: Option<i64>,
    /// Unix ms.
    pub paid_at: Option<i64>,
    /// Paid after the till gave up on it (expired or cancelled).
    pub late_paid: bool,
    /// Paid a different amount from the one asked for.
    pub amount_mismatch: bool,
    /// The last message for staff (a provider refusal, a fault).
    pub message: Option<String>,
}

impl OrderRow {
    /// What the customer is asked to pay: the provider's adjusted amount, else the order's.
    pub fn payable_or_amount(&self) -> Fen {
        self.payable.unwrap_or(self.amount)
    }
}

/// A new order, before it has a status.
#[derive(Clone, Debug)]
pub struct NewOrder {
    /// Our order number.
    pub order_no: OrderNo,
    /// The provider account.
    pub provider_id: String,
    /// Its protocol.
    pub provider_kind: String,
    /// The wallet.
    pub channel: Channel,
    /// The amount.
    pub amount: Fen,
    /// The title.
    pub subject: String,
    /// Who takes the sale.
    pub operator: String,
    /// Demo mode.
    pub demo: bool,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub expires_at: i64,
}

/// One row of an order's event log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventRow {
    /// Unix ms.
    pub at: i64,
    /// What happened: `created`, `create`, `query`, `callback`, `staff`, `timer`, `error` …
    pub kind: String,
    /// The status before, for a change.
    pub from: Option<String>,
    /// The status after, for a change.
    pub to: Option<String>,
    /// Words for staff.
    pub detail: String,
    /// The provider's raw answer.
    pub raw: Option<String>,
}

/// A report to apply to an order: a provider answer, a callback, or staff and timer actions.
#[derive(Clone, Debug)]
pub struct Update {
    /// Where it came from (`create`, `query`, `callback`, `staff`, `timer`).
    pub source: &'static str,
    /// The state it reports.
    pub state: ProviderState,
    /// Words for staff and the event log.
    pub detail: String,
    /// The provider's raw answer.
    pub raw: Option<String>,
    /// The provider's order id, when learnt.
    pub provider_order_id: Option<String>,
    /// The amount to pay, when the provider adjusted it.
    pub payable: Option<Fen>,
    /// The amount paid, as reported.
    pub paid_amount: Option<Fen>,
    /// Whether `paid_amount` is covered by the provider's signature (a verified notify):
    /// such an amount corrects what an earlier, unsigned report assumed, even on a paid
    /// order (the status stays paid; the amount and the mismatch flag are set right).
    pub paid_amount_signed: bool,
    /// A new expiry, Unix ms.
    pub expires_at: Option<i64>,
    /// Unix ms.
    pub at: i64,
}

impl Update {
    /// An update with only the state, source and detail set.
    pub fn new(
        source: &'static str,
        state: ProviderState,
        detail: impl Into<String>,
        at: i64,
    ) -> Self {
        Update {
            source,
            state,
            detail: detail.into(),
            raw: None,
            provider_order_id: None,
            payable: None,
            paid_amount: None,
            paid_amount_signed: false,
            expires_at: None,
            at,
        }
    }
}

/// What [`Ledger::apply`] did.
#[derive(Clone, Debug)]
pub struct Applied {
    /// The row after the update.
    pub order: OrderRow,
    /// The status before, when it changed.
    pub changed_from: Option<PaymentStatus>,
}

/// Paid sales over a window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Totals {
    /// How many.
    pub count: i64,
    /// How much.
    pub total: Fen,
}

/// The ledger: one SQLite connection (and, for a till, its claim on the file).
pub struct Ledger {
    conn: Connection,
    /// Inside [`Ledger::batch`]: each write is a savepoint of the batch's one transaction.
    in_batch: bool,
    /// Held for as long as a till uses this ledger (see [`Ledger::open_for_till`]).
    _till_lock: Option<survive::TillLock>,
}

/// A write's transaction: its own, or a savepoint inside a batch.
enum WriteTx<'a> {
    Transaction(rusqlite::Transaction<'a>),
    Savepoint(rusqlite::Savepoint<'a>),
}

impl std::ops::Deref for WriteTx<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        match self {
            WriteTx::Transaction(tx) => tx,
            WriteTx::Savepoint(sp) => sp,
        }
    }
}

impl WriteTx<'_> {
    fn commit(self) -> rusqlite::Result<()> {
        match self {
            WriteTx::Transaction(tx) => tx.commit(),
            WriteTx::Savepoint(sp) => sp.commit(),
        }
    }
}

const ORDER_COLUMNS: &str = "order_no, provider_id, provider_kind, channel, amount_fen, payable_fen, \
    paid_fen, status, provider_order_id, subject, operator, demo, created_at, expires_at, paid_at, \
    late_paid, amount_mismatch, message";

/// The page cache each ledger connection keeps, in KiB. SQLite's default is 2,000 KiB per
/// connection, which the till's two connections filled over its first thousand sales of a
/// run (+3 MB resident, measured by `benches/till.rs`) while the operating system caches the
/// same file pages anyway. What a sale touches (the newest rows and index leaves) fits
/// easily; the end-of-day queries on a years-old ledger stay within their targets
/// (`benches/ledger.rs`).
const PAGE_CACHE_KIB: i64 = 512;

/// What every connection to the ledger gets, the writer's and the reader's: a wait for
/// another process's lock, the statements kept prepared (parsing the SQL again for each
/// status change cost more than running it), and a small page cache ([`PAGE_CACHE_KIB`]).
fn connection_settings(conn: &Connection) -> Result<(), LedgerError> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.set_prepared_statement_cache_capacity(64);
    // A negative cache_size is a size in KiB (a positive one counts pages).
    conn.pragma_update(None, "cache_size", -PAGE_CACHE_KIB)?;
    Ok(())
}

impl Ledger {
    /// Opens (creating if needed) the ledger file and brings its schema up to date.
    ///
    /// # Errors
    /// [`LedgerError::Open`] naming the file, or a migration failure.
    pub fn open(path: &Path) -> Result<Self, LedgerError> {
        if let Some(dir) = path.parent() {
            // A missing folder surfaces as SQLite's own "unable to open" below.
            let _ = std::fs::create_dir_all(dir);
        }
        let conn = Connection::open(path).map_err(|source| LedgerError::Open {
            path: path.display().to_string(),
            source,
        })?;
        Self::init(conn)
    }

    /// Opens the ledger for a till: claims it for this process (one till per ledger), checks
    /// its integrity, then opens it as [`Ledger::open`] does. The claim lasts as long as the
    /// returned ledger.
    ///
    /// # Errors
    /// [`LedgerError::InUse`] when another till runs on it, [`LedgerError::Damaged`] when the
    /// check fails, or what [`Ledger::open`] returns.
    pub fn open_for_till(path: &Path) -> Result<Self, LedgerError> {
        let lock = survive::lock(path)?;
        let conn = Connection::open(path).map_err(|source| LedgerError::Open {
            path: path.display().to_string(),
            source,
        })?;
        // Only the wait for a lock before the check: the rest of `connection_settings` comes
        // with `init`, after it, because setting the page cache reads the file's header and
        // would turn a damaged ledger into a bare "file is not a database" instead of the
        // check's message naming the file and its backups.
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        survive::check(&conn, path)?;
        let mut ledger = Self::init(conn)?;
        ledger._till_lock = Some(lock);
        Ok(ledger)
    }

    /// An in-memory ledger, for tests.
    ///
    /// # Errors
    /// When SQLite cannot start.
    pub fn open_in_memory() -> Result<Self, LedgerError> {
        Self::init(Connection::open_in_memory()?)
    }

    /// A second, read-only connection to the same ledger file, for reading while the
    /// writer commits (WAL lets readers run beside the one writer, each seeing the last
    /// commit). `None` for an in-memory ledger, which only its own connection sees.
    ///
    /// # Errors
    /// When the file cannot be opened again.
    pub fn reader(&self) -> Result<Option<Ledger>, LedgerError> {
        let Some(path) = self.conn.path().filter(|path| !path.is_empty()) else {
            return Ok(None);
        };
        let conn = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        connection_settings(&conn)?;
        Ok(Some(Ledger {
            conn,
            _till_lock: None,
            in_batch: false,
        }))
    }

    fn init(conn: Connection) -> Result<Self, LedgerError> {
        connection_settings(&conn)?;
        // WAL keeps readers off the writer's back; FULL makes a commit survive power loss.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let mut ledger = Ledger {
            conn,
            _till_lock: None,
            in_batch: false,
        };
        ledger.migrate()?;
        Ok(ledger)
    }

    fn migrate(&mut self) -> Result<(), LedgerError> {
        let version: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |row| row.get(0))?;
        let tx = self.conn.transaction()?;
        for (index, sql) in schema::MIGRATIONS.iter().enumerate() {
            let target = i64::try_from(index).unwrap_or(i64::MAX).saturating_add(1);
            if target > version {
                tx.execute_batch(sql)?;
                tx.pragma_update(None, "user_version", target)?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The schema version.
    ///
    /// # Errors
    /// On a database error.
    pub fn schema_version(&self) -> Result<i64, LedgerError> {
        Ok(self
            .conn
            .pragma_query_value(None, "user_version", |row| row.get(0))?)
    }

    /// Writes a new order in status `creating` with its first event, and commits.
    ///
    /// # Errors
    /// [`LedgerError::Duplicate`] when the order number is taken.
    pub fn insert_order(&mut self, order: &NewOrder) -> Result<OrderRow, LedgerError> {
        let tx = self.write()?;
        // Never inside a closed window (see the module's invariants).
        let created_at = order.created_at.max(last_close_end(&tx)?);
        let inserted = tx
            .prepare_cached(
                "INSERT INTO orders (order_no, provider_id, provider_kind, channel, amount_fen, status, \
             subject, operator, demo, created_at, expires_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, 'creating', ?6, ?7, ?8, ?9, ?10, ?9)",
            )?
            .execute(params![
                order.order_no.as_str(),
                order.provider_id,
                order.provider_kind,
                order.channel.as_str(),
                order.amount.0,
                order.subject,
                order.operator,
                order.demo,
                created_at,
                order.expires_at,
            ]);
        match inserted {
            Err(rusqlite::Error::SqliteFailure(err, _))
                if err.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                return Err(LedgerError::Duplicate(order.order_no.to_string()));
            }
            other => other?,
        };
        let id = tx.last_insert_rowid();
        tx.prepare_cached(
            "INSERT INTO order_events (order_id, at, kind, to_status, detail) VALUES (?1, ?2, 'created', 'creating', ?3)",
        )?
        .execute(params![
                id,
                created_at,
                format!(
                    "{} {} via {} ({})",
                    order.amount, order.channel, order.provider_id, order.provider_kind
                )
            ])?;
        tx.commit()?;
        self.get(&order.order_no)?
            .ok_or_else(|| LedgerError::NotFound(order.order_no.to_string()))
    }

    /// One write: its own IMMEDIATE transaction, or inside [`Ledger::batch`] a savepoint
    /// of the batch's transaction (undone alone when the write fails).
    fn write(&mut self) -> Result<WriteTx<'_>, LedgerError> {
        Ok(if self.in_batch {
            WriteTx::Savepoint(self.conn.savepoint()?)
        } else {
            WriteTx::Transaction(
                self.conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)?,
            )
        })
    }

    /// Group commit, begun: the writes until [`Ledger::end_batch`] share one IMMEDIATE
    /// transaction, each a savepoint of it (a failed write is undone alone), and one fsync.
    ///
    /// # Errors
    /// When the transaction cannot start (then writes go on one transaction each).
    pub fn begin_batch(&mut self) -> Result<(), LedgerError> {
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        self.in_batch = true;
        Ok(())
    }

    /// Group commit, ended: commits the batch. A write of it counts only when its own result
    /// and this one are both `Ok`.
    ///
    /// # Errors
    /// When the commit fails; then no write of the batch stays.
    pub fn end_batch(&mut self) -> Result<(), LedgerError> {
        self.in_batch = false;
        match self.conn.execute_batch("COMMIT") {
            Ok(()) => Ok(()),
            Err(err) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(err.into())
            }
        }
    }

    /// Applies a report in one transaction: decides the new status from the stored one,
    /// updates the row, and appends the event (also when nothing changed, so the raw answer
    /// is kept).
    ///
    /// # Errors
    /// [`LedgerError::NotFound`] for an unknown order, or a database error (nothing is
    /// changed then).
    pub fn apply(&mut self, order_no: &OrderNo, update: &Update) -> Result<Applied, LedgerError> {
        // IMMEDIATE: this transaction reads, then writes; taking the write lock first means
        // another process's commit in between (a close from the CLI) cannot make the write
        // fail, and the last close read below is the latest.
        let tx = self.write()?;
        let (id, current) = {
            let found: Option<(i64, String)> = tx
                .prepare_cached("SELECT id, status FROM orders WHERE order_no = ?1")?
                .query_row([order_no.as_str()], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()?;
            let (id, status) = found.ok_or_else(|| LedgerError::NotFound(order_no.to_string()))?;
            let status: PaymentStatus =
                status.parse().map_err(|err: crate::model::UnknownStatus| {
                    LedgerError::Corrupt(err.to_string())
                })?;
            (id, status)
        };
        let next = current.apply(&update.state);
        let detail = match &update.state {
            ProviderState::Unknown(code) => {
                format!(
                    "{} (unknown provider code {code}: order left as it is)",
                    update.detail
                )
            }
            _ => update.detail.clone(),
        };
        // Facts the answer carries are kept even when the status does not move.
        tx.prepare_cached(
            "UPDATE orders SET \
               provider_order_id = COALESCE(provider_order_id, ?2), \
               payable_fen = COALESCE(?3, payable_fen), \
               expires_at = COALESCE(?4, expires_at), \
               updated_at = ?5 \
             WHERE id = ?1",
        )?
        .execute(params![
            id,
            update.provider_order_id,
            update.payable.map(|fen| fen.0),
            update.expires_at,
            update.at
        ])?;
        if let Some(next) = next {
            tx.prepare_cached("UPDATE orders SET status = ?2, message = ?3 WHERE id = ?1")?
                .execute(params![id, next.as_str(), detail])?;
            if next == PaymentStatus::Paid {
                let late = matches!(
                    current,
                    PaymentStatus::Expired | PaymentStatus::Cancelled | PaymentStatus::Failed
                );
                // Never inside a closed window (see the module's invariants).
                let paid_at = update.at.max(last_close_end(&tx)?);
                tx.prepare_cached(
                    "UPDATE orders SET paid_at = ?2, late_paid = ?3, \
                       paid_fen = COALESCE(?4, payable_fen, amount_fen), \
                       amount_mismatch = (COALESCE(?4, payable_fen, amount_fen) <> COALESCE(payable_fen, amount_fen)) \
                     WHERE id = ?1",
                )?
                .execute(params![id, paid_at, late, update.paid_amount.map(|fen| fen.0)])?;
            }
        }
        let mut detail = detail;
        if next.is_none()
            && current == PaymentStatus::Paid
            && update.state == ProviderState::Paid
            && update.paid_amount_signed
            && let Some(paid) = update.paid_amount
        {
            let changed = tx
                .prepare_cached(
                    "UPDATE orders SET paid_fen = ?2, \
                   amount_mismatch = (?2 <> COALESCE(payable_fen, amount_fen)) \
                 WHERE id = ?1 AND paid_fen IS NOT ?2",
                )?
                .execute(params![id, paid.0])?;
            if changed > 0 {
                detail = format!("{detail} (signed paid amount {paid} recorded)");
            }
        }
        tx.prepare_cached(
            "INSERT INTO order_events (order_id, at, kind, from_status, to_status, detail, raw) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            id,
            update.at,
            update.source,
            next.map(|_| current.as_str()),
            next.map(PaymentStatus::as_str),
            detail,
            update.raw
        ])?;
        tx.commit()?;
        let order = self
            .get(order_no)?
            .ok_or_else(|| LedgerError::NotFound(order_no.to_string()))?;
        Ok(Applied {
            order,
            changed_from: next.map(|_| current),
        })
    }

    /// Appends an event that changes no status (a failed request, a note).
    ///
    /// # Errors
    /// [`LedgerError::NotFound`] for an unknown order, or a database error.
    pub fn note(
        &mut self,
        order_no: &OrderNo,
        kind: &str,
        detail: &str,
        raw: Option<&str>,
        at: i64,
    ) -> Result<(), LedgerError> {
        let tx = self.write()?;
        let id: i64 = tx
            .prepare_cached("SELECT id FROM orders WHERE order_no = ?1")?
            .query_row([order_no.as_str()], |row| row.get(0))
            .optional()?
            .ok_or_else(|| LedgerError::NotFound(order_no.to_string()))?;
        tx.prepare_cached("UPDATE orders SET message = ?2, updated_at = ?3 WHERE id = ?1")?
            .execute(params![id, detail, at])?;
        tx.prepare_cached(
            "INSERT INTO order_events (order_id, at, kind, detail, raw) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![id, at, kind, detail, raw])?;
        tx.commit()?;
        Ok(())
    }

    /// One order.
    ///
    /// # Errors
    /// On a database error or a damaged row.
    pub fn get(&self, order_no: &OrderNo) -> Result<Option<OrderRow>, LedgerError> {
        let sql = format!("SELECT {ORDER_COLUMNS} FROM orders WHERE order_no = ?1");
        let row = self
            .conn
            .prepare_cached(&sql)?
            .query_row([order_no.as_str()], RawOrder::from_row)
            .optional()?;
        row.map(RawOrder::into_order).transpose()
    }

    /// An order's events, oldest first.
    ///
    /// # Errors
    /// On a database error.
    pub fn events(&self, order_no: &OrderNo) -> Result<Vec<EventRow>, LedgerError> {
        let mut stmt = self.conn.prepare(
            "SELECT e.at, e.kind, e.from_status, e.to_status, e.detail, e.raw \
             FROM order_events e JOIN orders o ON o.id = e.order_id \
             WHERE o.order_no = ?1 ORDER BY e.id",
        )?;
        let rows = stmt.query_map([order_no.as_str()], |row| {
            Ok(EventRow {
                at: row.get(0)?,
                kind: row.get(1)?,
                from: row.get(2)?,
                to: row.get(3)?,
                detail: row.get(4)?,
                raw: row.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Orders created in `[from_ms, to_ms)`, oldest first.
    ///
    /// # Errors
    /// On a database error or a damaged row.
    pub fn orders_between(&self, from_ms: i64, to_ms: i64) -> Result<Vec<OrderRow>, LedgerError> {
        let sql = format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE created_at >= ?1 AND created_at < ?2 ORDER BY created_at, id"
        );
        self.query_orders(&sql, params![from_ms, to_ms])
    }

    /// Orders that have not ended (`creating`, `pending`, `confirming`), oldest first.
    ///
    /// # Errors
    /// On a database error or a damaged row.
    pub fn open_orders(&self) -> Result<Vec<OrderRow>, LedgerError> {
        let sql = format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE status IN ('creating', 'pending', 'confirming') ORDER BY created_at, id"
        );
        self.query_orders(&sql, params![])
    }

    /// Paid orders created in `[from_ms, to_ms)`: count and sum of what was paid.
    ///
    /// # Errors
    /// On a database error.
    pub fn paid_totals(&self, from_ms: i64, to_ms: i64) -> Result<Totals, LedgerError> {
        let (count, total): (i64, i64) = self.conn
            .prepare_cached(
                "SELECT COUNT(*), COALESCE(SUM(COALESCE(paid_fen, payable_fen, amount_fen)), 0) FROM orders \
             WHERE status = 'paid' AND created_at >= ?1 AND created_at < ?2",
            )?
            .query_row(params![from_ms, to_ms],
            |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(Totals {
            count,
            total: Fen(total),
        })
    }

    /// Caps the database at `pages` pages (4 KiB each) on this connection, as a full disk
    /// would: a write that needs more fails with [`LedgerError::DiskFull`]. For tests of the
    /// full-disk path without filling a disk.
    ///
    /// # Errors
    /// On a database error.
    pub fn limit_size(&self, pages: i64) -> Result<(), LedgerError> {
        self.conn.pragma_update(None, "max_page_count", pages)?;
        Ok(())
    }

    /// The database's size in pages.
    ///
    /// # Errors
    /// On a database error.
    pub fn page_count(&self) -> Result<i64, LedgerError> {
        Ok(self
            .conn
            .pragma_query_value(None, "page_count", |row| row.get(0))?)
    }

    /// `PRAGMA integrity_check` says `ok`.
    ///
    /// # Errors
    /// On a database error.
    pub fn integrity_ok(&self) -> Result<bool, LedgerError> {
        let result: String = self
            .conn
            .prepare_cached("PRAGMA integrity_check")?
            .query_row([], |row| row.get(0))?;
        Ok(result == "ok")
    }

    fn query_orders(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<OrderRow>, LedgerError> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let raw = stmt
            .query_map(params, RawOrder::from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        raw.into_iter().map(RawOrder::into_order).collect()
    }
}

/// Where the last close ends (Unix ms), or 0 before the first close.
fn last_close_end(conn: &Connection) -> Result<i64, LedgerError> {
    Ok(conn
        .prepare_cached("SELECT to_ms FROM closes ORDER BY id DESC LIMIT 1")?
        .query_row([], |row| row.get(0))
        .optional()?
        .unwrap_or(0))
}

/// A row as SQLite hands it over, before its text columns are parsed.
struct RawOrder {
    order_no: String,
    provider_id: String,
    provider_kind: String,
    channel: String,
    amount: i64,
    payable: Option<i64>,
    paid: Option<i64>,
    status: String,
    provider_order_id: Option<String>,
    subject: String,
    operator: String,
    demo: bool,
    created_at: i64,
    expires_at: Option<i64>,
    paid_at: Option<i64>,
    late_paid: bool,
    amount_mismatch: bool,
    message: Option<String>,
}

impl RawOrder {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(RawOrder {
            order_no: row.get(0)?,
            provider_id: row.get(1)?,
            provider_kind: row.get(2)?,
            channel: row.get(3)?,
            amount: row.get(4)?,
            payable: row.get(5)?,
            paid: row.get(6)?,
            status: row.get(7)?,
            provider_order_id: row.get(8)?,
            subject: row.get(9)?,
            operator: row.get(10)?,
            demo: row.get(11)?,
            created_at: row.get(12)?,
            expires_at: row.get(13)?,
            paid_at: row.get(14)?,
            late_paid: row.get(15)?,
            amount_mismatch: row.get(16)?,
            message: row.get(17)?,
        })
    }

    fn into_order(self) -> Result<OrderRow, LedgerError> {
        let corrupt =
            |what: String| LedgerError::Corrupt(format!("order {}: {what}", self.order_no));
        Ok(OrderRow {
            order_no: OrderNo::new(&self.order_no).map_err(|err| corrupt(err.to_string()))?,
            channel: self
                .channel
                .parse()
                .map_err(|err: crate::model::UnknownChannel| corrupt(err.to_string()))?,
            status: self
                .status
                .parse()
                .map_err(|err: crate::model::UnknownStatus| corrupt(err.to_string()))?,
            provider_id: self.provider_id,
            provider_kind: self.provider_kind,
            amount: Fen(self.amount),
            payable: self.payable.map(Fen),
            paid: self.paid.map(Fen),
            provider_order_id: self.provider_order_id,
            subject: self.subject,
            operator: self.operator,
            demo: self.demo,
            created_at: self.created_at,
            expires_at: self.expires_at,
            paid_at: self.paid_at,
            late_paid: self.late_paid,
            amount_mismatch: self.amount_mismatch,
            message: self.message,
        })
    }
}
