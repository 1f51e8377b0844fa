//! What staff review at the end of the day: the day summary, the history pages, and the
//! numbered, append-only day closes (交班/日结).
//!
//! Two ways of counting, each chosen for its question:
//! - **A day** (summary, history, "today's paid" in the status bar) is the orders *created*
//!   in the business day's window, with their status now. This is what staff remember ("the
//!   sales I rang up today") and it does not move once the day's orders have ended.
//! - **A close** counts money by *payment time*: its paid totals are the orders with `paid_at`
//!   in its window, `[end of the previous close (or 0), now)`. An order created before a close
//!   and paid after it is counted once, in the later close; windows touch without overlap, so
//!   no payment is counted twice or missed. Its unpaid/expired/cancelled/failed counts are the
//!   orders created in its window with that status at close time.
//!
//! A close is computed and stored in one IMMEDIATE transaction (read the last close, compute,
//! insert), so two tills or a till and the CLI closing at once still get touching windows.
//! Its figures are kept as a JSON snapshot and never recomputed: reopening close no. 7 next
//! month shows what was handed over, whatever happened to its orders since.
//!
//! All queries are range scans on an index (`orders_by_created`, `orders_by_paid`), checked by
//! `EXPLAIN QUERY PLAN` in this module's tests; `cargo bench` times them on 2,000,000 orders.

use std::collections::BTreeMap;

use rusqlite::{OptionalExtension as _, TransactionBehavior, params};

use super::{Ledger, LedgerError, ORDER_COLUMNS, OrderRow, RawOrder, Totals};
use crate::day::HOUR_MS;
use crate::model::{Channel, Fen, PaymentStatus};

/// What the customer paid, as the ledger counts it everywhere: the reported paid amount, else
/// the payable, else the order's amount.
const PAID_FEN: &str = "COALESCE(paid_fen, payable_fen, amount_fen)";

/// Paid orders of one channel, provider or operator.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GroupTotals {
    /// The channel (`alipay` …), the provider account id, or the operator.
    pub key: String,
    /// How many paid orders.
    pub count: i64,
    /// How much was paid.
    pub total: Fen,
}

/// An order staff must look at: paid after the till gave up on it, or a different amount.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FlaggedOrder {
    /// Our order number.
    pub order_no: String,
    /// The wallet (`alipay` …).
    pub channel: String,
    /// The provider account id.
    pub provider_id: String,
    /// Who took the sale.
    pub operator: String,
    /// The order's amount.
    pub amount: Fen,
    /// What the customer was asked to pay.
    pub payable: Fen,
    /// What was paid.
    pub paid: Option<Fen>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub paid_at: Option<i64>,
    /// Paid after it had expired, been cancelled or failed.
    pub late_paid: bool,
    /// Paid a different amount from the one asked for.
    pub amount_mismatch: bool,
}

impl FlaggedOrder {
    fn of(order: &OrderRow) -> Self {
        FlaggedOrder {
            order_no: order.order_no.to_string(),
            channel: order.channel.as_str().to_string(),
            provider_id: order.provider_id.clone(),
            operator: order.operator.clone(),
            amount: order.amount,
            payable: order.payable_or_amount(),
            paid: order.paid,
            created_at: order.created_at,
            paid_at: order.paid_at,
            late_paid: order.late_paid,
            amount_mismatch: order.amount_mismatch,
        }
    }
}

/// The figures of a day or a close.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Figures {
    /// Orders created in the window, whatever their status.
    pub orders: i64,
    /// Paid orders and what they paid (a day: created in it; a close: paid in it).
    pub paid: Totals,
    /// `paid` per channel, by channel name; only channels with a paid order.
    pub by_channel: Vec<GroupTotals>,
    /// `paid` per provider account, by id.
    pub by_provider: Vec<GroupTotals>,
    /// `paid` per operator, by name.
    pub by_operator: Vec<GroupTotals>,
    /// Created in the window and not ended yet (creating, pending, confirming).
    pub unpaid: i64,
    /// Created in the window, expired unpaid.
    pub expired: i64,
    /// Created in the window, cancelled unpaid.
    pub cancelled: i64,
    /// Created in the window, refused or closed by the provider.
    pub failed: i64,
    /// The paid orders of `paid` that are late or of a different amount, oldest first.
    pub flagged: Vec<FlaggedOrder>,
}

/// Paid takings of one hour of the business day.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HourBucket {
    /// Where the hour starts, Unix ms (`window start + index hours`); label it with
    /// [`crate::day::clock_label`].
    pub start_ms: i64,
    /// Paid orders created in the hour.
    pub count: i64,
    /// What they paid.
    pub total: Fen,
}

/// A business day's summary: the orders created in `[from_ms, to_ms)`.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DaySummary {
    /// Window start, Unix ms.
    pub from_ms: i64,
    /// Window end (excluded), Unix ms.
    pub to_ms: i64,
    /// The figures.
    #[serde(flatten)]
    pub figures: Figures,
    /// Paid takings per hour since the window start, by creation time: 24 buckets, or 23/25
    /// on a DST day, every hour present even when empty (a bar chart's x axis).
    pub hourly: Vec<HourBucket>,
}

/// A day close (交班/日结): numbered, append-only.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Close {
    /// The close number, from 1.
    pub number: i64,
    /// When it was made, Unix ms (equal to `to_ms`).
    pub closed_at: i64,
    /// Window start, Unix ms: where the previous close ended, or 0 for the first.
    pub from_ms: i64,
    /// Window end (excluded), Unix ms.
    pub to_ms: i64,
    /// Who closed.
    pub operator: String,
    /// The figures at close time (paid by payment time, see the module doc).
    #[serde(flatten)]
    pub figures: Figures,
}

/// Which orders of a window the history shows; `None`/`false` means "any".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HistoryFilter {
    /// Only this status.
    pub status: Option<PaymentStatus>,
    /// Only this wallet.
    pub channel: Option<Channel>,
    /// Only this provider account.
    pub provider_id: Option<String>,
    /// Only this operator.
    pub operator: Option<String>,
    /// Only late-paid or amount-mismatch orders.
    pub flagged_only: bool,
}

/// The values of a window that the history's filter menus offer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HistoryChoices {
    /// Provider account ids with an order in the window, sorted.
    pub providers: Vec<String>,
    /// Operators with an order in the window, sorted.
    pub operators: Vec<String>,
}

const HISTORY_WHERE: &str = "created_at >= ?1 AND created_at < ?2 \
     AND (?3 IS NULL OR status = ?3) AND (?4 IS NULL OR channel = ?4) \
     AND (?5 IS NULL OR provider_id = ?5) AND (?6 IS NULL OR operator = ?6) \
     AND (?7 = 0 OR late_paid <> 0 OR amount_mismatch <> 0)";

/// The columns the figures need, for orders created in `[?1, ?2)`.
fn created_figures_sql() -> String {
    format!(
        "SELECT status, channel, provider_id, operator, {PAID_FEN}, created_at, \
         late_paid <> 0 OR amount_mismatch <> 0 \
         FROM orders WHERE created_at >= ?1 AND created_at < ?2"
    )
}

/// The columns the paid figures need, for orders paid in `[?1, ?2)`.
fn paid_figures_sql() -> String {
    format!(
        "SELECT channel, provider_id, operator, {PAID_FEN}, \
         late_paid <> 0 OR amount_mismatch <> 0 \
         FROM orders WHERE paid_at >= ?1 AND paid_at < ?2 AND status = 'paid'"
    )
}

fn history_page_sql() -> String {
    format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE {HISTORY_WHERE} \
         ORDER BY created_at DESC, id DESC LIMIT ?8 OFFSET ?9"
    )
}

fn close_orders_sql() -> String {
    format!(
        "SELECT {ORDER_COLUMNS} FROM orders \
         WHERE (paid_at >= ?1 AND paid_at < ?2) OR (created_at >= ?1 AND created_at < ?2) \
         ORDER BY created_at, id"
    )
}

/// Sums paid orders per key; the map keeps keys sorted.
#[derive(Default)]
struct Groups(BTreeMap<String, (i64, i64)>);

impl Groups {
    fn add(&mut self, key: String, fen: i64) {
        let entry = self.0.entry(key).or_default();
        entry.0 += 1;
        entry.1 += fen;
    }

    fn into_vec(self) -> Vec<GroupTotals> {
        self.0
            .into_iter()
            .map(|(key, (count, total))| GroupTotals {
                key,
                count,
                total: Fen(total),
            })
            .collect()
    }
}

/// Paid figures gathered row by row.
#[derive(Default)]
struct PaidTally {
    paid: Totals,
    channels: Groups,
    providers: Groups,
    operators: Groups,
    any_flagged: bool,
}

impl PaidTally {
    fn add(&mut self, channel: String, provider: String, operator: String, fen: i64) {
        self.paid.count += 1;
        self.paid.total.0 += fen;
        self.channels.add(channel, fen);
        self.providers.add(provider, fen);
        self.operators.add(operator, fen);
    }

    fn into_figures(self, figures: &mut Figures) {
        figures.paid = self.paid;
        figures.by_channel = self.channels.into_vec();
        figures.by_provider = self.providers.into_vec();
        figures.by_operator = self.operators.into_vec();
    }
}

fn status_of(text: &str) -> Result<PaymentStatus, LedgerError> {
    text.parse()
        .map_err(|err: crate::model::UnknownStatus| LedgerError::Corrupt(err.to_string()))
}

fn sql_count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Ledger {
    /// The summary of the orders created in `[from_ms, to_ms)` (a business day's window from
    /// [`crate::day::window`]): counts per status, paid totals per channel, provider and
    /// operator, flagged orders, and paid takings per hour.
    ///
    /// # Errors
    /// On a database error or a damaged row.
    pub fn day_summary(&self, from_ms: i64, to_ms: i64) -> Result<DaySummary, LedgerError> {
        let hours = crate::day::hours_in(from_ms, to_ms);
        let mut hourly: Vec<HourBucket> = (0..hours)
            .map(|h| HourBucket {
                start_ms: from_ms.saturating_add(sql_count(h).saturating_mul(HOUR_MS)),
                ..HourBucket::default()
            })
            .collect();
        let mut figures = Figures::default();
        let mut tally = PaidTally::default();
        let mut stmt = self.conn.prepare_cached(&created_figures_sql())?;
        let mut rows = stmt.query(params![from_ms, to_ms])?;
        while let Some(row) = rows.next()? {
            let status = status_of(&row.get::<_, String>(0)?)?;
            figures.orders += 1;
            match status {
                PaymentStatus::Paid => {
                    let fen: i64 = row.get(4)?;
                    let created_at: i64 = row.get(5)?;
                    tally.add(row.get(1)?, row.get(2)?, row.get(3)?, fen);
                    tally.any_flagged |= row.get::<_, bool>(6)?;
                    let index = usize::try_from((created_at - from_ms) / HOUR_MS).ok();
                    if let Some(bucket) = index.and_then(|i| hourly.get_mut(i)) {
                        bucket.count += 1;
                        bucket.total.0 += fen;
                    }
                }
                PaymentStatus::Creating | PaymentStatus::Pending | PaymentStatus::Confirming => {
                    figures.unpaid += 1;
                }
                PaymentStatus::Expired => figures.expired += 1,
                PaymentStatus::Cancelled => figures.cancelled += 1,
                PaymentStatus::Failed => figures.failed += 1,
            }
        }
        if tally.any_flagged {
            let sql = format!(
                "SELECT {ORDER_COLUMNS} FROM orders WHERE created_at >= ?1 AND created_at < ?2 \
                 AND status = 'paid' AND (late_paid <> 0 OR amount_mismatch <> 0) \
                 ORDER BY created_at, id"
            );
            figures.flagged = self
                .query_orders(&sql, params![from_ms, to_ms])?
                .iter()
                .map(FlaggedOrder::of)
                .collect();
        }
        tally.into_figures(&mut figures);
        Ok(DaySummary {
            from_ms,
            to_ms,
            figures,
            hourly,
        })
    }

    /// How many orders created in `[from_ms, to_ms)` pass `filter` (the history's row count).
    ///
    /// # Errors
    /// On a database error.
    pub fn history_count(
        &self,
        from_ms: i64,
        to_ms: i64,
        filter: &HistoryFilter,
    ) -> Result<usize, LedgerError> {
        let sql = format!("SELECT COUNT(*) FROM orders WHERE {HISTORY_WHERE}");
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let count: i64 = stmt.query_row(
            params![
                from_ms,
                to_ms,
                filter.status.map(PaymentStatus::as_str),
                filter.channel.map(Channel::as_str),
                filter.provider_id,
                filter.operator,
                filter.flagged_only,
            ],
            |row| row.get(0),
        )?;
        Ok(usize::try_from(count).unwrap_or(0))
    }

    /// Rows `offset .. offset + limit` of the history of `[from_ms, to_ms)` under `filter`,
    /// newest first (ties by insertion, newest first), for a virtual table that asks for the
    /// visible rows only.
    ///
    /// # Errors
    /// On a database error or a damaged row.
    pub fn history_page(
        &self,
        from_ms: i64,
        to_ms: i64,
        filter: &HistoryFilter,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<OrderRow>, LedgerError> {
        self.query_orders(
            &history_page_sql(),
            params![
                from_ms,
                to_ms,
                filter.status.map(PaymentStatus::as_str),
                filter.channel.map(Channel::as_str),
                filter.provider_id,
                filter.operator,
                filter.flagged_only,
                sql_count(limit),
                sql_count(offset),
            ],
        )
    }

    /// The providers and operators with an order created in `[from_ms, to_ms)`, for the
    /// history's filter menus.
    ///
    /// # Errors
    /// On a database error.
    pub fn history_choices(&self, from_ms: i64, to_ms: i64) -> Result<HistoryChoices, LedgerError> {
        let distinct = |column: &str| -> Result<Vec<String>, LedgerError> {
            let sql = format!(
                "SELECT DISTINCT {column} FROM orders WHERE created_at >= ?1 AND created_at < ?2 \
                 ORDER BY 1"
            );
            let mut stmt = self.conn.prepare_cached(&sql)?;
            let values = stmt
                .query_map(params![from_ms, to_ms], |row| row.get(0))?
                .collect::<Result<Vec<String>, _>>()?;
            Ok(values)
        };
        Ok(HistoryChoices {
            providers: distinct("provider_id")?,
            operators: distinct("operator")?,
        })
    }

    /// Closes the till (交班/日结) at `now_ms`: records close number N covering
    /// `[end of close N-1 (or 0), now_ms)` with `operator` and its figures, in one
    /// transaction, and returns it.
    ///
    /// # Errors
    /// [`LedgerError::ClockBehindLastClose`] when `now_ms` is before the end of the last close
    /// (nothing is written), or a database error.
    pub fn record_close(&mut self, operator: &str, now_ms: i64) -> Result<Close, LedgerError> {
        // IMMEDIATE: no other writer can slip an order or a close between the read of the
        // last close and the insert of this one.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let close = draft_close(&tx, operator, now_ms)?;
        let summary = serde_json::to_string(&close.figures)
            .map_err(|err| LedgerError::Corrupt(format!("close summary: {err}")))?;
        tx.execute(
            "INSERT INTO closes (id, closed_at, from_ms, to_ms, operator, summary) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                close.number,
                close.closed_at,
                close.from_ms,
                close.to_ms,
                close.operator,
                summary
            ],
        )?;
        tx.commit()?;
        Ok(close)
    }

    /// What [`Ledger::record_close`] would record at `now_ms`, without recording it (for a
    /// "close now?" confirmation screen).
    ///
    /// # Errors
    /// As [`Ledger::record_close`].
    pub fn preview_close(&self, operator: &str, now_ms: i64) -> Result<Close, LedgerError> {
        draft_close(&self.conn, operator, now_ms)
    }

    /// Every close, newest first.
    ///
    /// # Errors
    /// On a database error or a damaged snapshot.
    pub fn list_closes(&self) -> Result<Vec<Close>, LedgerError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, closed_at, from_ms, to_ms, operator, summary FROM closes ORDER BY id DESC",
        )?;
        let raw = stmt
            .query_map([], RawClose::from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        raw.into_iter().map(RawClose::into_close).collect()
    }

    /// Close number `number`, as it was recorded.
    ///
    /// # Errors
    /// On a database error or a damaged snapshot.
    pub fn close(&self, number: i64) -> Result<Option<Close>, LedgerError> {
        let raw = self
            .conn
            .query_row(
                "SELECT id, closed_at, from_ms, to_ms, operator, summary FROM closes WHERE id = ?1",
                [number],
                RawClose::from_row,
            )
            .optional()?;
        raw.map(RawClose::into_close).transpose()
    }

    /// The orders of close `number` for its export, oldest first: those paid in its window
    /// and those created in it, as they are now.
    ///
    /// # Errors
    /// [`LedgerError::NotFound`] for an unknown close, or a database error.
    pub fn close_orders(&self, number: i64) -> Result<Vec<OrderRow>, LedgerError> {
        let close = self
            .close(number)?
            .ok_or_else(|| LedgerError::NotFound(format!("close no. {number}")))?;
        self.query_orders(&close_orders_sql(), params![close.from_ms, close.to_ms])
    }

    /// Writes finished order rows as they are, without events and without the status rules,
    /// in one transaction. **For benchmark and test generators only**: the till writes
    /// orders through [`Ledger::insert_order`] and [`Ledger::apply`].
    ///
    /// # Errors
    /// On a database error (nothing is written then).
    #[doc(hidden)]
    pub fn insert_rows_for_generators(&mut self, rows: &[OrderRow]) -> Result<(), LedgerError> {
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO orders (order_no, provider_id, provider_kind, channel, amount_fen, \
                 payable_fen, paid_fen, status, provider_order_id, subject, operator, demo, \
                 created_at, expires_at, paid_at, updated_at, late_paid, amount_mismatch, message) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, \
                 COALESCE(?15, ?13), ?16, ?17, ?18)",
            )?;
            for row in rows {
                stmt.execute(params![
                    row.order_no.as_str(),
                    row.provider_id,
                    row.provider_kind,
                    row.channel.as_str(),
                    row.amount.0,
                    row.payable.map(|f| f.0),
                    row.paid.map(|f| f.0),
                    row.status.as_str(),
                    row.provider_order_id,
                    row.subject,
                    row.operator,
                    row.demo,
                    row.created_at,
                    row.expires_at,
                    row.paid_at,
                    row.late_paid,
                    row.amount_mismatch,
                    row.message,
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}

/// The close that would be recorded at `now_ms` on `conn` (inside the caller's transaction).
fn draft_close(
    conn: &rusqlite::Connection,
    operator: &str,
    now_ms: i64,
) -> Result<Close, LedgerError> {
    let last: Option<(i64, i64)> = conn
        .query_row(
            "SELECT id, to_ms FROM closes ORDER BY id DESC LIMIT 1",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?;
    let (number, from_ms) = match last {
        Some((number, last_to)) if now_ms < last_to => {
            return Err(LedgerError::ClockBehindLastClose {
                number,
                last_to,
                now: now_ms,
            });
        }
        Some((number, last_to)) => (number + 1, last_to),
        None => (1, 0),
    };
    Ok(Close {
        number,
        closed_at: now_ms,
        from_ms,
        to_ms: now_ms,
        operator: operator.to_string(),
        figures: close_figures(conn, from_ms, now_ms)?,
    })
}

/// A close's figures: paid by payment time, the other counts by creation time.
fn close_figures(
    conn: &rusqlite::Connection,
    from_ms: i64,
    to_ms: i64,
) -> Result<Figures, LedgerError> {
    let mut figures = Figures::default();
    {
        let mut stmt = conn.prepare_cached(
            "SELECT status, COUNT(*) FROM orders WHERE created_at >= ?1 AND created_at < ?2 \
             GROUP BY status",
        )?;
        let mut rows = stmt.query(params![from_ms, to_ms])?;
        while let Some(row) = rows.next()? {
            let count: i64 = row.get(1)?;
            figures.orders += count;
            match status_of(&row.get::<_, String>(0)?)? {
                PaymentStatus::Creating | PaymentStatus::Pending | PaymentStatus::Confirming => {
                    figures.unpaid += count;
                }
                PaymentStatus::Expired => figures.expired += count,
                PaymentStatus::Cancelled => figures.cancelled += count,
                PaymentStatus::Failed => figures.failed += count,
                PaymentStatus::Paid => {}
            }
        }
    }
    let mut tally = PaidTally::default();
    {
        let mut stmt = conn.prepare_cached(&paid_figures_sql())?;
        let mut rows = stmt.query(params![from_ms, to_ms])?;
        while let Some(row) = rows.next()? {
            tally.add(row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?);
            tally.any_flagged |= row.get::<_, bool>(4)?;
        }
    }
    if tally.any_flagged {
        let sql = format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE paid_at >= ?1 AND paid_at < ?2 \
             AND status = 'paid' AND (late_paid <> 0 OR amount_mismatch <> 0) \
             ORDER BY paid_at, id"
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let raw = stmt
            .query_map(params![from_ms, to_ms], RawOrder::from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        for order in raw {
            figures.flagged.push(FlaggedOrder::of(&order.into_order()?));
        }
    }
    tally.into_figures(&mut figures);
    Ok(figures)
}

/// A close as stored, before its snapshot is parsed.
struct RawClose {
    number: i64,
    closed_at: i64,
    from_ms: i64,
    to_ms: i64,
    operator: String,
    summary: String,
}

impl RawClose {
    fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(RawClose {
            number: row.get(0)?,
            closed_at: row.get(1)?,
            from_ms: row.get(2)?,
            to_ms: row.get(3)?,
            operator: row.get(4)?,
            summary: row.get(5)?,
        })
    }

    fn into_close(self) -> Result<Close, LedgerError> {
        let figures: Figures = serde_json::from_str(&self.summary).map_err(|err| {
            LedgerError::Corrupt(format!("close no. {}: summary: {err}", self.number))
        })?;
        Ok(Close {
            number: self.number,
            closed_at: self.closed_at,
            from_ms: self.from_ms,
            to_ms: self.to_ms,
            operator: self.operator,
            figures,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    /// The plan SQLite picks for `sql` (the real statements of this module).
    fn plan(ledger: &Ledger, sql: &str, params: impl rusqlite::Params) -> String {
        let mut stmt = ledger
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap();
        let rows = stmt
            .query_map(params, |row| row.get::<_, String>(3))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        rows.join(" | ")
    }

    fn no_full_scan(what: &str, plan: &str) {
        // A full scan reads "SCAN orders" with no index; a range reads "SEARCH … USING INDEX".
        for step in plan.split(" | ") {
            assert!(
                !step.starts_with("SCAN orders") || step.contains("INDEX"),
                "{what} scans the whole table: {plan}"
            );
        }
        assert!(
            !plan.contains("TEMP B-TREE FOR ORDER BY"),
            "{what} sorts: {plan}"
        );
    }

    #[test]
    fn the_day_history_and_close_queries_use_indexes() {
        let ledger = Ledger::open_in_memory().unwrap();
        let (a, b) = (0_i64, 86_400_000_i64);
        let none: Option<&str> = None;
        no_full_scan(
            "day summary",
            &plan(&ledger, &created_figures_sql(), params![a, b]),
        );
        let page = plan(
            &ledger,
            &history_page_sql(),
            params![a, b, none, none, none, none, false, 100, 0],
        );
        no_full_scan("history page", &page);
        assert!(page.contains("orders_by_created"), "{page}");
        no_full_scan(
            "history count",
            &plan(
                &ledger,
                &format!("SELECT COUNT(*) FROM orders WHERE {HISTORY_WHERE}"),
                params![a, b, "paid", "alipay", "main", "A01", true],
            ),
        );
        let paid = plan(&ledger, &paid_figures_sql(), params![a, b]);
        no_full_scan("close paid figures", &paid);
        assert!(paid.contains("orders_by_paid"), "{paid}");
        let orders = plan(&ledger, &close_orders_sql(), params![a, b]);
        assert!(
            orders.contains("orders_by_paid") && orders.contains("orders_by_created"),
            "close export must use both indexes: {orders}"
        );
    }
}
