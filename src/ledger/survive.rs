//! Keeping the ledger file alive: one till process per ledger (a lock file), the integrity
//! check at start, and the daily backup through SQLite's online backup API.
//!
//! Invariants kept here:
//! - while a till runs, `<ledger>.lock` beside the ledger is locked by it (an OS file lock, so
//!   it is released when the process dies, however it dies); a second till is refused with a
//!   message naming the file and the other process's pid. The review commands (`status`,
//!   `history`, `report`, `closes`, `export`, `close`) take no lock: SQLite's WAL lets them
//!   read, and a close write, beside a running till;
//! - a ledger that fails its integrity check is never used: the till stops with a message
//!   naming the file and where the backups are;
//! - a backup file is complete or absent: it is written under a temporary name and renamed;
//!   only files named `<ledger stem>-YYYY-MM-DD.sqlite3` are ever deleted, the newest
//!   [`BACKUPS_KEPT`] of each ledger kept.

use std::fs::File;
use std::io::{Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use super::LedgerError;

/// How many daily backups are kept.
pub const BACKUPS_KEPT: usize = 14;

/// The folder of the daily backups of the ledger at `ledger`: `backups/` beside it.
pub fn backups_dir(ledger: &Path) -> PathBuf {
    ledger
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join("backups")
}

/// The lock file of the ledger at `ledger`: `<file name>.lock` beside it.
fn lock_path(ledger: &Path) -> PathBuf {
    let mut name = ledger.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    ledger.with_file_name(name)
}

/// The exclusive claim of one till process on one ledger; released when dropped (or when the
/// process ends).
#[derive(Debug)]
pub struct TillLock {
    _file: File,
}

/// Claims the ledger at `ledger` for this process.
///
/// # Errors
/// [`LedgerError::InUse`] when another process holds it (with its pid when it can be read),
/// [`LedgerError::Io`] when the lock file cannot be made.
pub fn lock(ledger: &Path) -> Result<TillLock, LedgerError> {
    let path = lock_path(ledger);
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let io = |err: std::io::Error| LedgerError::Io {
        path: path.display().to_string(),
        message: err.to_string(),
    };
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut text = String::new();
            // The holder wrote its pid; some systems refuse reading a locked file.
            let _ = file.read_to_string(&mut text);
            return Err(LedgerError::InUse {
                path: ledger.display().to_string(),
                pid: text.trim().parse().ok(),
            });
        }
        Err(std::fs::TryLockError::Error(err)) => return Err(io(err)),
    }
    file.set_len(0).map_err(io)?;
    file.rewind().map_err(io)?;
    write!(file, "{}", std::process::id()).map_err(io)?;
    file.flush().map_err(io)?;
    Ok(TillLock { _file: file })
}

/// Checks the ledger through `conn` with `PRAGMA quick_check`: every page and record, every
/// constraint, without cross-checking each index against its table (see the module's
/// measurements in `tests/ledger_survives.rs` for why quick, not full).
///
/// # Errors
/// [`LedgerError::Damaged`] naming the file, what SQLite found and where the backups are.
pub fn check(conn: &Connection, ledger: &Path) -> Result<(), LedgerError> {
    let damaged = |report: String| LedgerError::Damaged {
        path: ledger.display().to_string(),
        report,
        backups: backups_dir(ledger).display().to_string(),
    };
    let found: Result<Vec<String>, rusqlite::Error> =
        conn.prepare("PRAGMA quick_check(5)").and_then(|mut stmt| {
            stmt.query_map([], |row| row.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()
        });
    match found {
        Ok(lines) if lines.len() == 1 && lines.first().is_some_and(|l| l == "ok") => Ok(()),
        Ok(lines) => Err(damaged(lines.join("; "))),
        Err(rusqlite::Error::SqliteFailure(err, message))
            if matches!(
                err.code,
                rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase
            ) =>
        {
            Err(damaged(message.unwrap_or_else(|| err.to_string())))
        }
        Err(err) => Err(err.into()),
    }
}

/// The backup file of the ledger at `ledger` for `day`: `<stem>-YYYY-MM-DD.sqlite3` in
/// [`backups_dir`] (`ledger-2026-03-01.sqlite3`; the demo ledger's are `ledger-demo-…`).
pub fn backup_path(ledger: &Path, day: chrono::NaiveDate) -> PathBuf {
    backups_dir(ledger).join(format!(
        "{}-{}.sqlite3",
        stem(ledger),
        day.format("%Y-%m-%d")
    ))
}

fn stem(ledger: &Path) -> String {
    ledger
        .file_stem()
        .map_or_else(|| "ledger".into(), |s| s.to_string_lossy().into_owned())
}

/// Makes `day`'s backup of the ledger at `ledger` ([`backup_path`]) unless it exists, then
/// deletes all but the newest [`BACKUPS_KEPT`] of that ledger. Reads the ledger through its
/// own read-only connection with SQLite's online backup API, so a till writing meanwhile is
/// neither stopped nor copied half. Returns the new file, or `None` when `day`'s backup was
/// already there.
///
/// # Errors
/// [`LedgerError::Backup`] naming the file and why (a full disk included).
pub fn daily_backup(ledger: &Path, day: chrono::NaiveDate) -> Result<Option<PathBuf>, LedgerError> {
    let dir = backups_dir(ledger);
    let target = backup_path(ledger, day);
    let stem = stem(ledger);
    if target.exists() {
        prune(&dir, &stem)?;
        return Ok(None);
    }
    let failed = |message: String| LedgerError::Backup {
        path: target.display().to_string(),
        message,
    };
    std::fs::create_dir_all(&dir).map_err(|err| failed(err.to_string()))?;
    let temp = target.with_extension("sqlite3.partial");
    let _ = std::fs::remove_file(&temp);
    let copy = || -> Result<(), rusqlite::Error> {
        let source = Connection::open_with_flags(
            ledger,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        source.busy_timeout(std::time::Duration::from_secs(5))?;
        let mut copy = Connection::open(&temp)?;
        {
            let backup = rusqlite::backup::Backup::new(&source, &mut copy)?;
            // 1,000 pages (4 MB) a step with a short pause lets the till's writes through.
            backup.run_to_completion(1000, std::time::Duration::from_millis(5), None)?;
        }
        // A backup is a single file: no WAL beside it.
        copy.pragma_update(None, "journal_mode", "DELETE")?;
        Ok(())
    };
    if let Err(err) = copy() {
        let _ = std::fs::remove_file(&temp);
        return Err(failed(LedgerError::from(err).to_string()));
    }
    std::fs::rename(&temp, &target).map_err(|err| {
        let _ = std::fs::remove_file(&temp);
        failed(err.to_string())
    })?;
    prune(&dir, &stem)?;
    Ok(Some(target))
}

/// Deletes all but the newest [`BACKUPS_KEPT`] daily backups `<stem>-YYYY-MM-DD.sqlite3` in
/// `dir`; other files (another ledger's backups included) are left.
fn prune(dir: &Path, stem: &str) -> Result<(), LedgerError> {
    let entries = std::fs::read_dir(dir).map_err(|err| LedgerError::Backup {
        path: dir.display().to_string(),
        message: err.to_string(),
    })?;
    let mut days: Vec<(chrono::NaiveDate, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let day = name.strip_prefix(stem)?.strip_prefix('-')?;
            let day = day.strip_suffix(".sqlite3")?;
            let day = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?;
            Some((day, entry.path()))
        })
        .collect();
    days.sort_by_key(|d| std::cmp::Reverse(d.0));
    for (_, old) in days.iter().skip(BACKUPS_KEPT) {
        std::fs::remove_file(old).map_err(|err| LedgerError::Backup {
            path: old.display().to_string(),
            message: err.to_string(),
        })?;
    }
    Ok(())
}
