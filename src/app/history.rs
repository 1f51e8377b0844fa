//! The history and closes screens' view model: which business day is shown, its filter, the
//! page cache behind the virtual table, the order in the detail panel, the day summary, the
//! closes and the last export. Plain Rust with no egui types, tested without a window.
//!
//! Invariants: every ledger read goes out as a [`Command`] in [`HistoryState::outbox`] (the UI
//! thread never touches the ledger); a page of the table is requested at most once per
//! (day, filter, refresh), and answers for another day or filter are dropped, so a late page
//! never shows under the wrong day.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use chrono::{Datelike as _, NaiveDate};

use crate::ledger::{Close, DaySummary, EventRow, HistoryChoices, HistoryFilter, OrderRow};
use crate::model::{OrderNo, PaymentStatus};
use crate::service::{Command, ExportRequest, HistoryPage, HistoryQuery};

/// Rows per page of the table cache.
pub const PAGE_ROWS: usize = 200;

/// Which screen is up: the till, the history, or the closes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum View {
    /// The till (F1).
    #[default]
    Till,
    /// One business day's orders and summary (F2).
    History,
    /// The day closes (F3).
    Closes,
    /// The settings (F4).
    Settings,
}

/// Why a typed export range was refused: which field, and what was typed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RangeError {
    /// The first day is not a `YYYY-MM-DD` date.
    From(String),
    /// The last day is not a `YYYY-MM-DD` date.
    To(String),
    /// The last day comes before the first.
    Backwards(NaiveDate, NaiveDate),
}

/// The range's default first day: the first of `today`'s month, so an owner's usual export
/// (month to date) needs no typing.
pub fn month_start(today: NaiveDate) -> NaiveDate {
    today.with_day(1).unwrap_or(today)
}

/// Reads a typed export range; an empty first day is the month's first, an empty last day is
/// today. Days after today are allowed (they simply hold no orders yet).
pub fn parse_range(
    from: &str,
    to: &str,
    today: NaiveDate,
) -> Result<(NaiveDate, NaiveDate), RangeError> {
    let read = |text: &str, default: NaiveDate| -> Option<NaiveDate> {
        let text = text.trim();
        if text.is_empty() {
            Some(default)
        } else {
            crate::day::parse_date(text).ok()
        }
    };
    let first =
        read(from, month_start(today)).ok_or_else(|| RangeError::From(from.trim().into()))?;
    let last = read(to, today).ok_or_else(|| RangeError::To(to.trim().into()))?;
    if last < first {
        return Err(RangeError::Backwards(first, last));
    }
    Ok((first, last))
}

/// The history and closes screens' state.
#[derive(Debug)]
pub struct HistoryState {
    /// The business day shown; `None` until the history is first opened.
    pub date: Option<NaiveDate>,
    /// Which orders are shown.
    pub filter: HistoryFilter,
    /// How many rows the day has under the filter, once known.
    pub total: Option<usize>,
    pages: HashMap<usize, Vec<OrderRow>>,
    /// Pages from before a refresh, shown until their fresh copy arrives (no flicker).
    stale: HashMap<usize, Vec<OrderRow>>,
    requested: HashSet<usize>,
    /// The selected row (table index).
    pub selected: Option<usize>,
    /// A row the table should scroll to (after a key moved the selection).
    pub scroll_to: Option<usize>,
    /// Whether the detail panel is open.
    pub detail_open: bool,
    /// The order in the detail panel and its event log, once loaded.
    pub detail: Option<(OrderRow, Vec<EventRow>)>,
    /// The day's summary, once loaded.
    pub summary: Option<DaySummary>,
    /// The filter menus' providers and operators.
    pub choices: HistoryChoices,
    /// An order changed on the shown day: reload once this frame.
    pub dirty: bool,
    /// Every close, newest first.
    pub closes: Vec<Close>,
    /// The close whose figures are shown.
    pub selected_close: Option<i64>,
    /// A close waiting for confirmation.
    pub preview: Option<Close>,
    /// Where exports are written.
    pub export_dir: PathBuf,
    /// The closes screen's range export, first day as typed (empty: the month's first day).
    pub range_from: String,
    /// The range export's last day as typed (empty: today).
    pub range_to: String,
    /// The last export's outcome, for staff.
    pub export_message: Option<Result<String, String>>,
    /// Commands for the service, sent by the app after the frame.
    pub outbox: Vec<Command>,
}

impl Default for HistoryState {
    fn default() -> Self {
        HistoryState {
            date: None,
            filter: HistoryFilter::default(),
            total: None,
            pages: HashMap::new(),
            stale: HashMap::new(),
            requested: HashSet::new(),
            selected: None,
            scroll_to: None,
            detail_open: false,
            detail: None,
            summary: None,
            choices: HistoryChoices::default(),
            dirty: false,
            closes: Vec::new(),
            selected_close: None,
            preview: None,
            export_dir: PathBuf::from("exports"),
            export_message: None,
            range_from: String::new(),
            range_to: String::new(),
            outbox: Vec::new(),
        }
    }
}

impl HistoryState {
    /// Shows business day `date` (keeps the filter), loading it afresh.
    pub fn show_day(&mut self, date: NaiveDate) {
        if self.date != Some(date) {
            self.selected = None;
            self.total = None;
            self.summary = None;
            self.stale.clear();
        }
        self.date = Some(date);
        self.reload(false);
    }

    /// Sets the filter and loads the day under it.
    pub fn set_filter(&mut self, filter: HistoryFilter) {
        if filter == self.filter {
            return;
        }
        self.filter = filter;
        self.selected = None;
        self.total = None;
        self.stale.clear();
        self.reload(false);
    }

    /// Forgets the cached pages and asks again: the summary, and page 0 (for the row count);
    /// other pages are asked for when drawn. With `keep`, the old rows stay on screen until
    /// their fresh copy arrives.
    fn reload(&mut self, keep: bool) {
        let old = std::mem::take(&mut self.pages);
        if keep {
            self.stale.extend(old);
        } else {
            self.pages.clear();
        }
        self.requested.clear();
        self.dirty = false;
        if let Some(date) = self.date {
            self.outbox.push(Command::LoadSummary(date));
            self.request_page(0);
        }
    }

    /// An order changed on the shown day: refresh the table and summary once, keeping the
    /// rows on screen meanwhile.
    pub fn refresh(&mut self) {
        self.reload(true);
        if let Some((order, _)) = &self.detail {
            self.outbox.push(Command::LoadOrder(order.order_no.clone()));
        }
    }

    fn request_page(&mut self, page: usize) {
        let Some(date) = self.date else {
            return;
        };
        if self.pages.contains_key(&page) || !self.requested.insert(page) {
            return;
        }
        self.outbox.push(Command::LoadHistory(HistoryQuery {
            date,
            filter: self.filter.clone(),
            offset: page.saturating_mul(PAGE_ROWS),
            limit: PAGE_ROWS,
        }));
    }

    /// Row `index` of the table, asking for its page once when it is not here yet (the
    /// table shows "…" until it arrives).
    pub fn row(&mut self, index: usize) -> Option<&OrderRow> {
        let page = index / PAGE_ROWS;
        if !self.pages.contains_key(&page) {
            self.request_page(page);
        }
        let at = index % PAGE_ROWS;
        self.pages
            .get(&page)
            .or_else(|| self.stale.get(&page))
            .and_then(|rows| rows.get(at))
    }

    /// How many pages were asked for and not answered (for tests and the "loading" hint).
    pub fn pages_in_flight(&self) -> usize {
        self.requested
            .iter()
            .filter(|p| !self.pages.contains_key(p))
            .count()
    }

    /// Takes a page from the service; drops it when it belongs to another day or filter.
    pub fn apply_page(&mut self, page: HistoryPage) {
        if Some(page.date) != self.date || page.filter != self.filter {
            return;
        }
        let index = page.offset / PAGE_ROWS;
        self.total = Some(page.total);
        self.stale.remove(&index);
        // Rows past the end of a shrunken day must not linger.
        let last_page = page.total.div_ceil(PAGE_ROWS);
        self.stale.retain(|p, _| *p < last_page);
        self.pages.insert(index, page.rows);
        if let Some(selected) = self.selected
            && selected >= page.total
        {
            self.selected = page.total.checked_sub(1);
        }
    }

    /// Takes a day summary; dropped when it is not the shown day's.
    pub fn apply_summary(&mut self, date: NaiveDate, summary: DaySummary, choices: HistoryChoices) {
        if Some(date) == self.date {
            self.summary = Some(summary);
            self.choices = choices;
        }
    }

    /// Takes an order's detail, when it is the one the panel waits for or shows.
    pub fn apply_detail(&mut self, order: OrderRow, events: Vec<EventRow>) {
        let wanted = self
            .selected
            .and_then(|i| self.row(i).map(|o| o.order_no.clone()));
        let shown = self.detail.as_ref().map(|(o, _)| o.order_no.clone());
        if wanted.as_ref() == Some(&order.order_no) || shown.as_ref() == Some(&order.order_no) {
            self.detail = Some((order, events));
        }
    }

    /// An order was written or changed: mark the day for one refresh when it is the shown
    /// day's (by the summary's window; before the summary arrives, any order counts).
    pub fn order_changed(&mut self, order: &OrderRow) {
        if self.date.is_none() {
            return;
        }
        let on_day = self
            .summary
            .as_ref()
            .is_none_or(|s| (s.from_ms..s.to_ms).contains(&order.created_at));
        if on_day {
            self.dirty = true;
        }
    }

    /// Moves the selection by `delta` rows, within the table.
    pub fn move_selection(&mut self, delta: isize) {
        let total = self.total.unwrap_or(0);
        if total == 0 {
            self.selected = None;
            return;
        }
        let next = match self.selected {
            None => 0,
            Some(at) => at.saturating_add_signed(delta).min(total - 1),
        };
        self.selected = Some(next);
        self.scroll_to = Some(next);
        if self.detail_open {
            self.open_detail();
        }
    }

    /// Opens the detail panel on the selected row and loads its event log.
    pub fn open_detail(&mut self) {
        let Some(order_no) = self
            .selected
            .and_then(|i| self.row(i).map(|o| o.order_no.clone()))
        else {
            return;
        };
        self.detail_open = true;
        if self.detail.as_ref().map(|(o, _)| &o.order_no) != Some(&order_no) {
            self.detail = None;
        }
        self.outbox.push(Command::LoadOrder(order_no));
    }

    /// Closes the detail panel; returns whether it was open.
    pub fn close_detail(&mut self) -> bool {
        let was = self.detail_open;
        self.detail_open = false;
        self.detail = None;
        was
    }

    /// The order "query again" would ask about: the detail's (or else the selected) order,
    /// while it is still open at the provider.
    pub fn queryable(&mut self) -> Option<OrderNo> {
        let order = match &self.detail {
            Some((order, _)) => Some(order.clone()),
            None => self.selected.and_then(|i| self.row(i).cloned()),
        }?;
        matches!(
            order.status,
            PaymentStatus::Creating | PaymentStatus::Pending | PaymentStatus::Confirming
        )
        .then_some(order.order_no)
    }

    /// Asks for an export of business days `from..=to` into the export folder.
    pub fn export_days(&mut self, from: NaiveDate, to: NaiveDate) {
        let name = if from == to {
            format!("qrtill-{from}.csv")
        } else {
            format!("qrtill-{from}-{to}.csv")
        };
        let path = self.export_dir.join(name);
        self.export_message = None;
        self.outbox
            .push(Command::Export(ExportRequest::Days { from, to }, path));
    }

    /// Exports the range typed on the closes screen; a field that is not a date, or a range
    /// that ends before it starts, is refused and nothing is written.
    pub fn export_range(&mut self, today: NaiveDate) -> Result<(), RangeError> {
        let (from, to) = parse_range(&self.range_from, &self.range_to, today)?;
        self.export_days(from, to);
        Ok(())
    }

    /// Asks for an export of close `number` into the export folder.
    pub fn export_close(&mut self, number: i64) {
        let path = self.export_dir.join(format!("qrtill-close-{number}.csv"));
        self.export_message = None;
        self.outbox
            .push(Command::Export(ExportRequest::Close(number), path));
    }

    /// The close whose figures are shown: the selected one, else the newest.
    pub fn shown_close(&self) -> Option<&Close> {
        match self.selected_close {
            Some(number) => self.closes.iter().find(|c| c.number == number),
            None => self.closes.first(),
        }
    }

    /// Moves the close selection by `delta` in the list (newest first).
    pub fn move_close(&mut self, delta: isize) {
        let at = self
            .shown_close()
            .and_then(|c| self.closes.iter().position(|x| x.number == c.number))
            .unwrap_or(0);
        let next = at
            .saturating_add_signed(delta)
            .min(self.closes.len().saturating_sub(1));
        self.selected_close = self.closes.get(next).map(|c| c.number);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

    use super::*;

    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 21).unwrap()
    }

    fn history_requests(state: &mut HistoryState) -> Vec<usize> {
        state
            .outbox
            .drain(..)
            .filter_map(|c| match c {
                Command::LoadHistory(q) => Some(q.offset / PAGE_ROWS),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn each_missing_page_is_requested_once() {
        let mut state = HistoryState::default();
        state.show_day(day());
        assert_eq!(history_requests(&mut state), vec![0]);
        // Page 0 answers with a day of 20,000 rows.
        state.apply_page(HistoryPage {
            date: day(),
            filter: HistoryFilter::default(),
            total: 20_000,
            offset: 0,
            rows: Vec::new(),
        });
        assert_eq!(state.total, Some(20_000));
        // Drawing rows of page 0 asks nothing; rows of page 3, drawn over several frames,
        // ask for page 3 once.
        for _ in 0..3 {
            for index in (0..40).chain(600..640) {
                let _ = state.row(index);
            }
        }
        assert_eq!(history_requests(&mut state), vec![3]);
        assert_eq!(state.pages_in_flight(), 1);
        // A page for another day is dropped and does not count as an answer.
        state.apply_page(HistoryPage {
            date: day().succ_opt().unwrap(),
            filter: HistoryFilter::default(),
            total: 1,
            offset: 3 * PAGE_ROWS,
            rows: Vec::new(),
        });
        assert_eq!(state.total, Some(20_000));
        assert_eq!(state.pages_in_flight(), 1);
        // A new filter starts over: page 0 again, once.
        state.set_filter(HistoryFilter {
            status: Some(PaymentStatus::Paid),
            ..HistoryFilter::default()
        });
        let _ = state.row(0);
        assert_eq!(history_requests(&mut state), vec![0]);
        // A refresh asks again, once per page drawn.
        state.refresh();
        let _ = state.row(1);
        let _ = state.row(2);
        assert_eq!(history_requests(&mut state), vec![0]);
    }

    #[test]
    fn the_selection_stays_in_the_table() {
        let mut state = HistoryState::default();
        state.show_day(day());
        state.apply_page(HistoryPage {
            date: day(),
            filter: HistoryFilter::default(),
            total: 3,
            offset: 0,
            rows: Vec::new(),
        });
        state.move_selection(1);
        assert_eq!(state.selected, Some(0));
        state.move_selection(10);
        assert_eq!(state.selected, Some(2));
        state.move_selection(-10);
        assert_eq!(state.selected, Some(0));
    }

    fn date(text: &str) -> NaiveDate {
        crate::day::parse_date(text).unwrap()
    }

    #[test]
    fn a_typed_range_defaults_to_month_to_date_and_names_the_bad_field() {
        let today = date("2026-11-21");
        assert_eq!(parse_range("", "", today), Ok((date("2026-11-01"), today)));
        assert_eq!(
            parse_range(" 2026-10-05 ", "2026-10-31", today),
            Ok((date("2026-10-05"), date("2026-10-31")))
        );
        assert_eq!(
            parse_range("2026-13-01", "", today),
            Err(RangeError::From("2026-13-01".into()))
        );
        assert_eq!(
            parse_range("", "yesterday", today),
            Err(RangeError::To("yesterday".into()))
        );
        assert_eq!(
            parse_range("2026-11-10", "2026-11-09", today),
            Err(RangeError::Backwards(
                date("2026-11-10"),
                date("2026-11-09")
            ))
        );
        // A refused range sends nothing; a good one asks for one export with both days in
        // the file name.
        let mut state = HistoryState {
            range_from: "11/01".into(),
            ..HistoryState::default()
        };
        assert!(state.export_range(today).is_err());
        assert!(state.outbox.is_empty());
        state.range_from = "2026-11-01".into();
        state.range_to = "2026-11-20".into();
        assert_eq!(state.export_range(today), Ok(()));
        match state.outbox.as_slice() {
            [Command::Export(ExportRequest::Days { from, to }, path)] => {
                assert_eq!((*from, *to), (date("2026-11-01"), date("2026-11-20")));
                assert!(
                    path.ends_with("qrtill-2026-11-01-2026-11-20.csv"),
                    "{path:?}"
                );
            }
            other => panic!("unexpected commands {other:?}"),
        }
    }
}
