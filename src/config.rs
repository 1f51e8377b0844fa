//! The config file (TOML) → a validated [`Config`], and where files live.
//!
//! Invariant: every refusal names the file and the key and says what is allowed; a merchant
//! key goes straight into a provider's `Secret` and is never part of an error message. The
//! file holds merchant keys, so qrtill writes it readable by its owner only ([`write_private`])
//! and warns, without refusing, about one that others can read.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::model::{DEFAULT_MAX_AMOUNT, Fen};
use crate::providers::{self, Provider};
use crate::sound::{MAX_VOLUME, SoundSettings};

/// The default listen address of the callback listener.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8765";

/// A refused config file.
#[derive(Debug, thiserror::Error)]
#[error("config file {path}: {message}")]
pub struct ConfigError {
    /// The file.
    pub path: String,
    /// What is wrong, naming the key.
    pub message: String,
}

/// UI language.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Language {
    /// 中文 (the default).
    #[default]
    Zh,
    /// English.
    En,
}

/// The colours of the till.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Theme {
    /// Light text on dark (the default: easy on the eyes all day, high contrast).
    #[default]
    Dark,
    /// Dark text on light (bright shops, sunlight on the screen).
    Light,
}

impl Theme {
    /// Its name in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            Theme::Dark => "dark",
            Theme::Light => "light",
        }
    }
}

impl Language {
    /// Its name in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            Language::Zh => "zh",
            Language::En => "en",
        }
    }
}

/// The callback listener's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenerConfig {
    /// Whether to run it.
    pub enabled: bool,
    /// Where it binds.
    pub listen: SocketAddr,
    /// The URL providers and payers are told (behind the shop's router or a tunnel).
    pub public_url: Option<String>,
}

impl Default for ListenerConfig {
    fn default() -> Self {
        ListenerConfig {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 8765)),
            public_url: None,
        }
    }
}

/// The customer display (`[display]`): a second window for a monitor that faces the
/// customer, showing the shop's name when idle, the QR and the amount during a sale, then
/// "paid". The till takes a changed value at any time (it reads it every frame).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DisplaySettings {
    /// Whether to show it (`enabled`, default false).
    pub enabled: bool,
    /// The shop's name shown when no sale is on (`shop_name`); empty shows a welcome.
    pub shop_name: String,
    /// The window's top-left corner in desktop coordinates (`position = "1920,0"`): a point
    /// on the customer's monitor, so that full screen covers that monitor.
    pub position: [i32; 2],
    /// Whether it covers the monitor it is on (`fullscreen`, default true).
    pub fullscreen: bool,
}

impl Default for DisplaySettings {
    fn default() -> Self {
        DisplaySettings {
            enabled: false,
            shop_name: String::new(),
            position: [1920, 0],
            fullscreen: true,
        }
    }
}

/// How far from the origin a display position may be, in pixels (any desktop of real
/// monitors fits).
const MAX_POSITION: i32 = 100_000;

impl DisplaySettings {
    /// Reads a position as written in the config, `"x,y"` in whole pixels (negative for a
    /// monitor left of or above the main one), e.g. `"1920,0"`.
    ///
    /// # Errors
    /// What is wrong, in words for whoever typed it.
    pub fn parse_position(text: &str) -> Result<[i32; 2], String> {
        let refuse = || {
            format!(
                "must be two whole numbers of pixels \"x,y\" from -{MAX_POSITION} to {MAX_POSITION} (e.g. \"1920,0\"), found `{text}`"
            )
        };
        let (x, y) = text.split_once(',').ok_or_else(refuse)?;
        let number = |part: &str| {
            part.trim()
                .parse::<i32>()
                .ok()
                .filter(|n| (-MAX_POSITION..=MAX_POSITION).contains(n))
                .ok_or_else(refuse)
        };
        Ok([number(x)?, number(y)?])
    }

    /// The position as the config writes it, `"x,y"`.
    pub fn position_text(&self) -> String {
        format!("{},{}", self.position[0], self.position[1])
    }

    /// The `[display]` table as the config file holds it (for writing the settings back);
    /// [`Config::parse`] reads it back unchanged.
    pub fn to_table(&self) -> toml::Table {
        let mut table = toml::Table::new();
        table.insert("enabled".into(), toml::Value::Boolean(self.enabled));
        table.insert(
            "shop_name".into(),
            toml::Value::String(self.shop_name.clone()),
        );
        table.insert("position".into(), toml::Value::String(self.position_text()));
        table.insert("fullscreen".into(), toml::Value::Boolean(self.fullscreen));
        table
    }
}

/// A validated config.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where it was read from (`None` in demo mode).
    pub path: Option<PathBuf>,
    /// The provider used when the till starts.
    pub default_provider: String,
    /// The operator recorded on every sale (the one chosen at start).
    pub operator: String,
    /// Everyone who may work the till, for the operator switch (may be empty).
    pub operators: Vec<String>,
    /// The colours.
    pub theme: Theme,
    /// The largest amount one sale may have.
    pub max_amount: Fen,
    /// How long an order waits for payment when its provider does not say.
    pub order_timeout: Duration,
    /// How long an ended unpaid order is still watched for a late payment.
    pub late_grace: Duration,
    /// UI language.
    pub language: Language,
    /// When the business day starts (local time): `day_start = "04:00"` makes a sale at
    /// 01:30 count for the day before. Default midnight. See [`crate::day`].
    pub day_start: chrono::NaiveTime,
    /// The callback listener.
    pub listener: ListenerConfig,
    /// The customer display.
    pub display: DisplaySettings,
    /// The provider accounts, in file order.
    pub providers: Vec<Arc<dyn Provider>>,
    /// The paid chime and announcement (`[sound]`).
    pub sound: SoundSettings,
    /// Problems with the file that do not stop the till (e.g. others can read it), for staff.
    pub warnings: Vec<String>,
}

impl Config {
    /// The account with this id.
    pub fn provider(&self, id: &str) -> Option<&Arc<dyn Provider>> {
        self.providers.iter().find(|p| p.id() == id)
    }

    /// Reads and validates a config file.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the file and the key.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|err| ConfigError {
            path: path.display().to_string(),
            message: format!("cannot read it: {err}"),
        })?;
        let mut config = Config::parse(&text).map_err(|message| ConfigError {
            path: path.display().to_string(),
            message,
        })?;
        config.path = Some(path.to_path_buf());
        config.warnings.extend(permission_warning(path));
        Ok(config)
    }

    /// Parses config text.
    ///
    /// # Errors
    /// A message naming the key and what is allowed.
    pub fn parse(text: &str) -> Result<Config, String> {
        let table: toml::Table = text.parse().map_err(|err: toml::de::Error| {
            // toml's message quotes the offending line, which may hold a key: keep only the
            // position and the reason.
            let reason = err.message();
            match err.span() {
                Some(span) => {
                    let line = text
                        .get(..span.start)
                        .map_or(0, |s| s.lines().count().max(1));
                    format!("not valid TOML at line {line}: {reason}")
                }
                None => format!("not valid TOML: {reason}"),
            }
        })?;
        const TOP: &[&str] = &[
            "default_provider",
            "operator",
            "operators",
            "theme",
            "max_amount",
            "order_timeout_secs",
            "late_grace_secs",
            "language",
            "day_start",
            "listener",
            "display",
            "provider",
            "sound",
        ];
        if let Some(unknown) = table.keys().find(|key| !TOP.contains(&key.as_str())) {
            return Err(format!(
                "unknown key `{unknown}` (allowed: {})",
                TOP.join(", ")
            ));
        }
        let string = |key: &str| -> Result<Option<String>, String> {
            match table.get(key) {
                None => Ok(None),
                Some(toml::Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => Err(format!(
                    "key `{key}` must be a string in quotes, found {}",
                    other.type_str()
                )),
            }
        };
        let seconds = |key: &str, default: u64, max: u64| -> Result<Duration, String> {
            match table.get(key) {
                None => Ok(Duration::from_secs(default)),
                Some(toml::Value::Integer(n))
                    if (1..=i64::try_from(max).unwrap_or(i64::MAX)).contains(n) =>
                {
                    Ok(Duration::from_secs(n.unsigned_abs()))
                }
                Some(other) => Err(format!(
                    "key `{key}` must be a whole number of seconds from 1 to {max}, found `{other}`"
                )),
            }
        };
        let max_amount = match string("max_amount")? {
            None => DEFAULT_MAX_AMOUNT,
            Some(text) => Fen::parse_input(&text, Fen(i64::MAX)).map_err(|err| {
                format!("key `max_amount` must be an amount in yuan such as \"50000.00\": {err}")
            })?,
        };
        let language = match string("language")?.as_deref() {
            None | Some("zh") => Language::Zh,
            Some("en") => Language::En,
            Some(other) => {
                return Err(format!(
                    "key `language` must be \"zh\" or \"en\", found `{other}`"
                ));
            }
        };
        let day_start = match string("day_start")? {
            None => crate::day::MIDNIGHT,
            Some(text) => crate::day::parse_day_start(&text)
                .map_err(|err| format!("key `day_start` {err} (e.g. \"04:00\")"))?,
        };
        let theme = match string("theme")?.as_deref() {
            None | Some("dark") => Theme::Dark,
            Some("light") => Theme::Light,
            Some(other) => {
                return Err(format!(
                    "key `theme` must be \"dark\" or \"light\", found `{other}`"
                ));
            }
        };
        let operators = parse_operators(table.get("operators"))?;
        let listener = parse_listener(table.get("listener"))?;
        let display = parse_display(table.get("display"))?;
        let sound = parse_sound(table.get("sound"))?;
        let providers = parse_providers(table.get("provider"))?;
        let default_provider = match string("default_provider")? {
            Some(id) => {
                if !providers.iter().any(|p| p.id() == id) {
                    return Err(format!(
                        "key `default_provider` names `{id}`, but no [[provider]] has that id (ids: {})",
                        ids(&providers)
                    ));
                }
                id
            }
            None => providers
                .first()
                .map(|p| p.id().to_string())
                .unwrap_or_default(),
        };
        Ok(Config {
            path: None,
            default_provider,
            operator: string("operator")?
                .or_else(|| operators.first().cloned())
                .unwrap_or_default(),
            operators,
            theme,
            max_amount,
            order_timeout: seconds("order_timeout_secs", 300, 86_400)?,
            late_grace: seconds("late_grace_secs", 600, 86_400)?,
            language,
            day_start,
            listener,
            display,
            providers,
            sound,
            warnings: Vec::new(),
        })
    }
}

/// A warning when the config file at `path` can be read by its group or by others: it holds
/// merchant keys. Says the file, its mode and the fix. `None` when only the owner can read it
/// (and on systems without Unix permissions).
pub fn permission_warning(path: &Path) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
        (mode & 0o077 != 0).then(|| {
            format!(
                "配置文件 {path} 含商户密钥，但其他用户可读 (权限 {mode:03o})，请运行 chmod 600 {path} / \
                 the config file {path} holds merchant keys and other users can read it \
                 (mode {mode:03o}): run `chmod 600 {path}`",
                path = path.display()
            )
        })
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// Writes a config file (or any file holding merchant keys) readable and writable by its owner
/// only: created with mode 0600 on Unix, an existing file narrowed to 0600 before the text goes
/// in, and replaced whole through a temporary file beside it so a crash never leaves half a
/// config.
///
/// # Errors
/// A [`ConfigError`] naming the file when it cannot be written.
pub fn write_private(path: &Path, text: &str) -> Result<(), ConfigError> {
    use std::io::Write as _;
    let fail = |err: std::io::Error| ConfigError {
        path: path.display().to_string(),
        message: format!("cannot write it: {err}"),
    };
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    let temp = path.with_file_name(name);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(&temp).map_err(fail)?;
    // A leftover temporary file keeps its old mode through `open`: narrow it first.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(fail)?;
    }
    file.write_all(text.as_bytes()).map_err(fail)?;
    file.sync_all().map_err(fail)?;
    drop(file);
    std::fs::rename(&temp, path).map_err(fail)
}

fn ids(providers: &[Arc<dyn Provider>]) -> String {
    providers
        .iter()
        .map(|p| p.id())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `operators = ["张三", "李四"]`: names of 1–32 characters, each once.
fn parse_operators(value: Option<&toml::Value>) -> Result<Vec<String>, String> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let list = value
        .as_array()
        .ok_or("key `operators` must be a list of names, e.g. operators = [\"张三\", \"李四\"]")?;
    let mut names: Vec<String> = Vec::new();
    for item in list {
        let name = item.as_str().map(str::trim).unwrap_or_default();
        if name.is_empty() || name.chars().count() > 32 {
            return Err(format!(
                "key `operators` must hold names of 1 to 32 characters in quotes, found `{item}`"
            ));
        }
        if names.iter().any(|n| n == name) {
            return Err(format!("key `operators` names `{name}` twice"));
        }
        names.push(name.to_string());
    }
    Ok(names)
}

fn parse_listener(value: Option<&toml::Value>) -> Result<ListenerConfig, String> {
    let mut listener = ListenerConfig::default();
    let Some(value) = value else {
        return Ok(listener);
    };
    let table = value
        .as_table()
        .ok_or("`listener` must be a table: [listener]")?;
    for (key, value) in table {
        match (key.as_str(), value) {
            ("enabled", toml::Value::Boolean(b)) => listener.enabled = *b,
            ("listen", toml::Value::String(s)) => {
                listener.listen = s.parse().map_err(|_| {
                    format!("[listener] key `listen` must be an address such as \"{DEFAULT_LISTEN}\", found `{s}`")
                })?;
            }
            ("public_url", toml::Value::String(s)) => {
                let parsed = url::Url::parse(s).map_err(|err| {
                    format!("[listener] key `public_url` is not a valid URL ({err}): `{s}`")
                })?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(format!(
                        "[listener] key `public_url` must be an http:// or https:// URL, found `{s}`"
                    ));
                }
                listener.public_url = Some(s.trim_end_matches('/').to_string());
            }
            ("enabled" | "listen" | "public_url", other) => {
                return Err(format!(
                    "[listener] key `{key}` has the wrong type ({})",
                    other.type_str()
                ));
            }
            (other, _) => {
                return Err(format!(
                    "[listener] unknown key `{other}` (allowed: enabled, listen, public_url)"
                ));
            }
        }
    }
    Ok(listener)
}

fn parse_sound(value: Option<&toml::Value>) -> Result<SoundSettings, String> {
    let mut sound = SoundSettings::default();
    let Some(value) = value else {
        return Ok(sound);
    };
    let table = value.as_table().ok_or("`sound` must be a table: [sound]")?;
    for (key, value) in table {
        match (key.as_str(), value) {
            ("enabled", toml::Value::Boolean(b)) => sound.enabled = *b,
            ("enabled", other) => {
                return Err(format!(
                    "[sound] key `enabled` must be true or false, found {}",
                    other.type_str()
                ));
            }
            ("volume", toml::Value::Integer(n)) if (0..=i64::from(MAX_VOLUME)).contains(n) => {
                sound.volume = u8::try_from(*n).unwrap_or(MAX_VOLUME);
            }
            ("volume", other) => {
                return Err(format!(
                    "[sound] key `volume` must be a whole number from 0 to {MAX_VOLUME}, found `{other}`"
                ));
            }
            (other, _) => {
                return Err(format!(
                    "[sound] unknown key `{other}` (allowed: enabled, volume)"
                ));
            }
        }
    }
    Ok(sound)
}

fn parse_display(value: Option<&toml::Value>) -> Result<DisplaySettings, String> {
    let mut display = DisplaySettings::default();
    let Some(value) = value else {
        return Ok(display);
    };
    let table = value
        .as_table()
        .ok_or("`display` must be a table: [display]")?;
    for (key, value) in table {
        match (key.as_str(), value) {
            ("enabled", toml::Value::Boolean(b)) => display.enabled = *b,
            ("fullscreen", toml::Value::Boolean(b)) => display.fullscreen = *b,
            ("shop_name", toml::Value::String(s)) => {
                if s.chars().count() > 64 {
                    return Err(format!(
                        "[display] key `shop_name` must be at most 64 characters, found {}",
                        s.chars().count()
                    ));
                }
                display.shop_name = s.trim().to_string();
            }
            ("position", toml::Value::String(s)) => {
                display.position = DisplaySettings::parse_position(s)
                    .map_err(|why| format!("[display] key `position` {why}"))?;
            }
            ("enabled" | "fullscreen", other) => {
                return Err(format!(
                    "[display] key `{key}` must be true or false, found `{other}`"
                ));
            }
            ("shop_name" | "position", other) => {
                return Err(format!(
                    "[display] key `{key}` must be a string in quotes, found {}",
                    other.type_str()
                ));
            }
            (other, _) => {
                return Err(format!(
                    "[display] unknown key `{other}` (allowed: enabled, shop_name, position, fullscreen)"
                ));
            }
        }
    }
    Ok(display)
}

fn parse_providers(value: Option<&toml::Value>) -> Result<Vec<Arc<dyn Provider>>, String> {
    let Some(value) = value else {
        return Err(
            "no [[provider]] section: add one with id, kind and the provider's credentials".into(),
        );
    };
    let list = value
        .as_array()
        .ok_or("`provider` must be written as [[provider]] sections")?;
    let kinds = || {
        providers::KINDS
            .iter()
            .map(|k| k.name)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out: Vec<Arc<dyn Provider>> = Vec::new();
    for (index, entry) in list.iter().enumerate() {
        let n = index + 1;
        let mut table = entry
            .as_table()
            .cloned()
            .ok_or_else(|| format!("[[provider]] number {n} is not a table"))?;
        let id = match table.remove("id") {
            Some(toml::Value::String(id)) if valid_id(&id) => id,
            Some(toml::Value::String(id)) => {
                return Err(format!(
                    "[[provider]] number {n}: key `id` must be 1–32 characters of a-z, 0-9, _ or -, found `{id}`"
                ));
            }
            _ => {
                return Err(format!(
                    "[[provider]] number {n}: missing key `id` (a short name such as \"main\")"
                ));
            }
        };
        if out.iter().any(|p| p.id() == id) {
            return Err(format!("[[provider]] id `{id}` is used twice"));
        }
        let kind_name = match table.remove("kind") {
            Some(toml::Value::String(kind)) => kind,
            _ => {
                return Err(format!(
                    "[[provider]] `{id}`: missing key `kind` (one of: {})",
                    kinds()
                ));
            }
        };
        let kind = providers::kind(&kind_name).ok_or_else(|| {
            format!(
                "[[provider]] `{id}`: unknown kind `{kind_name}` (one of: {})",
                kinds()
            )
        })?;
        let provider = (kind.from_table)(&id, &table)
            .map_err(|message| format!("[[provider]] `{id}` (kind {kind_name}): {message}"))?;
        out.push(provider);
    }
    if out.is_empty() {
        return Err(
            "no [[provider]] section: add one with id, kind and the provider's credentials".into(),
        );
    }
    Ok(out)
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 32
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Where the config and the ledger live.
#[derive(Clone, Debug)]
pub struct Paths {
    /// The config file (it may not exist: then the till runs in demo mode).
    pub config: PathBuf,
    /// Whether the config path was given explicitly (then a missing file is an error).
    pub config_explicit: bool,
    /// The data folder: ledger and logs.
    pub data_dir: PathBuf,
}

impl Paths {
    /// Resolves paths from the command line / environment, falling back to the platform's
    /// folders (`~/.config/qrtill`, `~/.local/share/qrtill` on Linux).
    pub fn resolve(config: Option<PathBuf>, data_dir: Option<PathBuf>) -> Paths {
        let dirs = directories::ProjectDirs::from("", "", "qrtill");
        let fallback = || PathBuf::from(".qrtill");
        Paths {
            config_explicit: config.is_some(),
            config: config.unwrap_or_else(|| {
                dirs.as_ref()
                    .map_or_else(fallback, |d| d.config_dir().to_path_buf())
                    .join("config.toml")
            }),
            data_dir: data_dir.unwrap_or_else(|| {
                dirs.as_ref()
                    .map_or_else(fallback, |d| d.data_dir().to_path_buf())
            }),
        }
    }

    /// The ledger file: a separate one in demo mode, so no demo sale can mix with real ones.
    pub fn ledger(&self, demo: bool) -> PathBuf {
        self.data_dir.join(if demo {
            "ledger-demo.sqlite3"
        } else {
            "ledger.sqlite3"
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    const KEY: &str = "Kq9-config-debug-key-never-shown";

    fn config_text() -> String {
        format!(
            "[[provider]]\nid = \"main\"\nkind = \"ispay\"\nbase_url = \"https://pay.example\"\n\
             userid = \"10001\"\nkey = \"{KEY}\"\n\n[[provider]]\nid = \"second\"\nkind = \"epay\"\n\
             base_url = \"https://epay.example\"\npid = \"1000\"\nkey = \"{KEY}\"\n"
        )
    }

    #[test]
    fn debug_and_panic_messages_hide_the_key() {
        let config = Config::parse(&config_text()).unwrap();
        let debug = format!("{config:?} {:#?}", config.providers);
        assert!(debug.contains("main"), "Debug shows the config: {debug}");
        assert!(!debug.contains(KEY), "Debug shows the key: {debug}");
        // A panic that formats the config (as `expect` on it would) does not carry the key.
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            panic!("config was {config:?}")
        }));
        let payload = caught.expect_err("it panicked");
        let message = payload
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        assert!(message.starts_with("config was Config"), "{message}");
        assert!(
            !message.contains(KEY),
            "panic message shows the key: {message}"
        );
    }

    #[test]
    fn sound_defaults_and_refusals() {
        let config = Config::parse(&config_text()).unwrap();
        assert_eq!(
            config.sound,
            SoundSettings {
                enabled: true,
                volume: 80
            }
        );
        let with = |sound: &str| Config::parse(&format!("{sound}\n{}", config_text()));
        let config = with("[sound]\nenabled = false\nvolume = 0").unwrap();
        assert_eq!(
            config.sound,
            SoundSettings {
                enabled: false,
                volume: 0
            }
        );
        assert_eq!(with("[sound]\nvolume = 100").unwrap().sound.volume, 100);
        assert!(with("[sound]").unwrap().sound.enabled);
        let refused = [
            (
                "[sound]\nvolume = 101",
                "[sound] key `volume` must be a whole number from 0 to 100, found `101`",
            ),
            ("[sound]\nvolume = -1", "found `-1`"),
            ("[sound]\nvolume = \"80\"", "found `\"80\"`"),
            ("[sound]\nvolume = 50.5", "from 0 to 100"),
            (
                "[sound]\nenabled = \"yes\"",
                "[sound] key `enabled` must be true or false, found string",
            ),
            ("[sound]\nenabled = 1", "must be true or false"),
            (
                "[sound]\nloud = true",
                "[sound] unknown key `loud` (allowed: enabled, volume)",
            ),
            ("sound = 80", "`sound` must be a table: [sound]"),
        ];
        for (text, message) in refused {
            let err = with(text).unwrap_err();
            assert!(err.contains(message), "{text}: {err}");
        }
    }

    #[test]
    fn written_owner_only_and_loads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        // An existing, world-readable file is narrowed when replaced.
        std::fs::write(&path, "old").unwrap();
        write_private(&path, &config_text()).unwrap();
        let config = Config::load(&path).unwrap();
        assert_eq!(config.default_provider, "main");
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
        assert!(permission_warning(&path).is_none());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        assert!(!dir.path().join("config.toml.tmp").exists());
    }

    #[test]
    fn display_settings_default_off_and_refusals_name_the_key() {
        let config = Config::parse(&config_text()).unwrap();
        assert_eq!(config.display, DisplaySettings::default());
        assert!(!config.display.enabled && config.display.fullscreen);
        assert_eq!(config.display.position_text(), "1920,0");
        let with =
            |display: &str| Config::parse(&format!("[display]\n{display}\n{}", config_text()));
        let display = with(
            "enabled = true\nshop_name = \" 老王小卖部 \"\nposition = \"-1280, 0\"\nfullscreen = false",
        )
        .unwrap()
        .display;
        assert_eq!(
            display,
            DisplaySettings {
                enabled: true,
                shop_name: "老王小卖部".into(),
                position: [-1280, 0],
                fullscreen: false,
            }
        );
        for (bad, says) in [
            (
                "position = \"1920\"",
                "[display] key `position` must be two whole numbers",
            ),
            ("position = \"1920,x\"", "found `1920,x`"),
            ("position = \"1920,0,0\"", "[display] key `position`"),
            ("position = \"200000,0\"", "from -100000 to 100000"),
            (
                "position = [1920, 0]",
                "[display] key `position` must be a string",
            ),
            (
                "enabled = \"yes\"",
                "[display] key `enabled` must be true or false",
            ),
            (
                "fullscreen = 1",
                "[display] key `fullscreen` must be true or false",
            ),
            (
                "shop_name = 7",
                "[display] key `shop_name` must be a string",
            ),
            (
                "monitor = 2",
                "[display] unknown key `monitor` (allowed: enabled, shop_name, position, fullscreen)",
            ),
        ] {
            let err = with(bad).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
        // Written back, read back the same.
        let mut file = toml::Table::new();
        file.insert("display".into(), toml::Value::Table(display.to_table()));
        let written = format!("{}\n{}", toml::to_string(&file).unwrap(), config_text());
        assert_eq!(Config::parse(&written).unwrap().display, display);
        let long = format!("shop_name = \"{}\"", "店".repeat(65));
        assert!(with(&long).unwrap_err().contains("at most 64 characters"));
        assert!(
            Config::parse(&format!("display = 1\n{}", config_text()))
                .unwrap_err()
                .contains("[display]")
        );
    }

    #[cfg(unix)]
    #[test]
    fn readable_by_others_is_warned_about_not_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, config_text()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let config = Config::load(&path).unwrap();
        assert_eq!(config.warnings.len(), 1, "{:?}", config.warnings);
        let warning = &config.warnings[0];
        let shown = path.display().to_string();
        assert!(warning.contains(&shown), "{warning}");
        assert!(warning.contains("644"), "{warning}");
        assert!(warning.contains("chmod 600"), "{warning}");
        assert!(!warning.contains(KEY), "{warning}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(permission_warning(&path).is_some_and(|w| w.contains("640")));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(Config::load(&path).unwrap().warnings.is_empty());
    }
}
