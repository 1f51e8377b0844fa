//! The CSV export that the owner opens in Excel or WPS: one row per order.
//!
//! Invariants kept here, each for a way a spreadsheet would otherwise mangle the file:
//! - UTF-8 with a BOM (`EF BB BF`) first, so Excel and WPS do not read the Chinese as GBK;
//! - our order number and the provider's are written as text formulas `="2026112112345600001234"`,
//!   so a long digit string never becomes `2.02611E+21` (the EPAY export lesson in PEERS.md);
//! - amounts are plain `12.34` through [`Fen::to_yuan`], so they sum as numbers and are exact;
//! - times are local `YYYY-MM-DD HH:MM:SS`;
//! - free text (subject, operator) that starts like a formula (`= + - @`) is prefixed with `'`,
//!   so a cell can never run as a formula (CSV injection);
//! - no secret can appear: an [`OrderRow`] holds none.
//!
//! The file is written next to its destination and renamed into place, so a failed export
//! never leaves half a file under the name the owner asked for.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::TimeZone;

use crate::day::local_time;
use crate::ledger::OrderRow;
use crate::model::Fen;

/// The header row: Chinese, with English in parentheses.
pub const HEADERS: [&str; 13] = [
    "创建时间(created)",
    "订单号(order no)",
    "渠道(channel)",
    "支付平台(provider)",
    "金额(amount)",
    "应付(payable)",
    "实付(paid)",
    "状态(status)",
    "收银员(operator)",
    "标记(flags)",
    "平台单号(provider order id)",
    "付款时间(paid at)",
    "备注(subject)",
];

/// The UTF-8 byte order mark that tells Excel and WPS the file is UTF-8.
pub const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The flag written for a late payment.
pub const FLAG_LATE: &str = "迟付(late)";
/// The flag written for a payment of a different amount.
pub const FLAG_MISMATCH: &str = "金额不符(mismatch)";

/// An export that failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The file could not be written.
    #[error("cannot write the export {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The CSV writer failed (on the underlying writer).
    #[error("cannot write the export {path}: {source}")]
    Csv {
        /// The file.
        path: String,
        /// Why.
        source: csv::Error,
    },
}

/// `="text"`: a cell Excel and WPS show as the text itself, never as a number.
pub fn text_formula(text: &str) -> String {
    if text.is_empty() {
        return String::new();
    }
    format!("=\"{}\"", text.replace('"', "\"\""))
}

/// Free text that cannot run as a formula.
fn plain_text(text: &str) -> String {
    match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{text}"),
        _ => text.to_string(),
    }
}

/// The cells of one order, in [`HEADERS`] order.
pub fn record<Tz: TimeZone>(order: &OrderRow, tz: &Tz) -> [String; 13]
where
    Tz::Offset: std::fmt::Display,
{
    let flags: Vec<&str> = [
        (order.late_paid, FLAG_LATE),
        (order.amount_mismatch, FLAG_MISMATCH),
    ]
    .into_iter()
    .filter_map(|(on, flag)| on.then_some(flag))
    .collect();
    [
        local_time(tz, order.created_at),
        text_formula(order.order_no.as_str()),
        order.channel.name_zh().to_string(),
        order.provider_id.clone(),
        order.amount.to_yuan(),
        order.payable_or_amount().to_yuan(),
        order.paid.map(Fen::to_yuan).unwrap_or_default(),
        order.status.name_zh().to_string(),
        plain_text(&order.operator),
        flags.join(" "),
        order
            .provider_order_id
            .as_deref()
            .map(text_formula)
            .unwrap_or_default(),
        order
            .paid_at
            .map(|ms| local_time(tz, ms))
            .unwrap_or_default(),
        plain_text(&order.subject),
    ]
}

/// Writes the BOM, the header and one row per order to `out`, times in `tz`.
///
/// # Errors
/// [`ExportError`] naming `label` (the file, for messages) when writing fails.
pub fn write_orders<W: Write, Tz: TimeZone>(
    mut out: W,
    orders: &[OrderRow],
    tz: &Tz,
    label: &str,
) -> Result<(), ExportError>
where
    Tz::Offset: std::fmt::Display,
{
    let io = |source| ExportError::Io {
        path: label.to_string(),
        source,
    };
    let csv_err = |source| ExportError::Csv {
        path: label.to_string(),
        source,
    };
    out.write_all(BOM).map_err(io)?;
    // CRLF line ends, as Excel writes them; every field quoted only when it must be.
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(out);
    writer.write_record(HEADERS).map_err(csv_err)?;
    for order in orders {
        writer.write_record(record(order, tz)).map_err(csv_err)?;
    }
    writer.flush().map_err(io)?;
    Ok(())
}

/// Writes the export of `orders` to `path` (local times), replacing the file only once the
/// whole export is written. Returns the number of orders written.
///
/// # Errors
/// [`ExportError`] naming the file.
pub fn export_file(path: &Path, orders: &[OrderRow]) -> Result<usize, ExportError> {
    let label = path.display().to_string();
    let io = |source| ExportError::Io {
        path: label.clone(),
        source,
    };
    let part = part_path(path);
    let file = std::fs::File::create(&part).map_err(io)?;
    let written = write_orders(
        std::io::BufWriter::new(&file),
        orders,
        &chrono::Local,
        &label,
    )
    .and_then(|()| file.sync_all().map_err(io));
    if let Err(err) = written {
        let _ = std::fs::remove_file(&part);
        return Err(err);
    }
    std::fs::rename(&part, path).map_err(|err| {
        let _ = std::fs::remove_file(&part);
        io(err)
    })?;
    Ok(orders.len())
}

/// `FILE.part` beside `FILE`.
fn part_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    path.with_file_name(name)
}
