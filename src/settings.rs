//! The settings screen's document: the config file as an editable [`Draft`], and saving a
//! draft back (validated, owner-only) and applying it to the running till.
//!
//! Invariants: a merchant key read from the file never enters a [`Draft`] (a stored key is
//! only marked as present, and the file's own value is copied back when staff leave the field
//! empty), so no screen can show it; nothing is written that [`Config::parse`] refuses; the
//! file is replaced whole with mode 0600 ([`crate::config::write_private`]); keys the screen
//! does not edit (`max_amount`, timeouts …) are kept as they were.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::{self, Config, DisplaySettings, Language, ListenerConfig, Theme};
use crate::providers::{self, Field, Provider};
use crate::service::listener::{self, Listener};
use crate::service::{ServiceConfig, ServiceHandle};
use crate::sound::SoundSettings;

/// One key of a provider account as the screen edits it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldDraft {
    /// Which key.
    pub field: Field,
    /// What is typed. For a merchant key: a new key, or empty to keep the stored one.
    pub text: String,
    /// For a merchant key: whether the file already holds one (shown as "set", never shown).
    pub stored: bool,
}

/// A provider account as the screen edits it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderDraft {
    /// Its id in the file when it was read (`None` for a new account): a kept merchant key is
    /// looked up under it, so renaming an account keeps its key.
    pub original_id: Option<String>,
    /// The account id.
    pub id: String,
    /// The protocol (`kind`).
    pub kind: &'static str,
    /// Its keys, in the protocol's order.
    pub fields: Vec<FieldDraft>,
    /// A demo-mode sandbox account: shown, not editable, never written to the file.
    pub demo: bool,
}

impl ProviderDraft {
    /// A new, empty account of `kind` (`None` for an unknown kind).
    pub fn new(kind: &str, id: &str) -> Option<ProviderDraft> {
        let kind = providers::kind(kind)?;
        Some(ProviderDraft {
            original_id: None,
            id: id.to_string(),
            kind: kind.name,
            fields: kind
                .fields
                .iter()
                .map(|field| FieldDraft {
                    field: *field,
                    text: String::new(),
                    stored: false,
                })
                .collect(),
            demo: false,
        })
    }

    /// The protocol's name for people.
    pub fn kind_name(&self) -> &'static str {
        providers::kind(self.kind).map_or(self.kind, |kind| kind.display_name)
    }
}

/// Everything the settings screen edits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Draft {
    /// The operator chosen when the till starts.
    pub operator: String,
    /// Everyone who may work the till.
    pub operators: Vec<String>,
    /// UI language.
    pub language: Language,
    /// Colours.
    pub theme: Theme,
    /// When the business day starts, `HH:MM`.
    pub day_start: String,
    /// The account new sales use when the till starts.
    pub default_provider: String,
    /// Whether the callback listener runs.
    pub listener_enabled: bool,
    /// Where it binds, e.g. `127.0.0.1:8765`.
    pub listen: String,
    /// The URL providers and phones reach it at (may be empty).
    pub public_url: String,
    /// The paid chime and announcement.
    pub sound: SoundSettings,
    /// The customer display: on, shop name, full screen (the position is `display_position`).
    pub display: DisplaySettings,
    /// The customer display's position as typed, `x,y`.
    pub display_position: String,
    /// The provider accounts.
    pub providers: Vec<ProviderDraft>,
}

/// A value of the file as the text a field shows.
fn text_of(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl Draft {
    /// The draft of a config document; `demo` accounts (the built-in sandbox's) are listed
    /// first, read-only. Merchant keys are marked as stored, never copied.
    pub fn from_document(doc: &toml::Table, demo: &[Arc<dyn Provider>]) -> Draft {
        let get = |key: &str| doc.get(key).map(text_of).unwrap_or_default();
        let listener = doc.get("listener").and_then(toml::Value::as_table);
        let listener_get = |key: &str| listener.and_then(|t| t.get(key));
        let mut providers: Vec<ProviderDraft> = demo
            .iter()
            .filter_map(|p| {
                let mut draft = ProviderDraft::new(p.kind(), p.id())?;
                draft.demo = true;
                Some(draft)
            })
            .collect();
        let entries = doc.get("provider").and_then(toml::Value::as_array);
        for entry in entries.into_iter().flatten() {
            let Some(table) = entry.as_table() else {
                continue;
            };
            let id = table.get("id").map(text_of).unwrap_or_default();
            let kind = table.get("kind").map(text_of).unwrap_or_default();
            let Some(mut draft) = ProviderDraft::new(&kind, &id) else {
                continue;
            };
            draft.original_id = Some(id);
            for field in &mut draft.fields {
                let value = table.get(field.field.name);
                if field.field.secret {
                    field.stored = value.is_some_and(|v| !text_of(v).is_empty());
                } else {
                    field.text = value.map(text_of).unwrap_or_default();
                }
            }
            providers.push(draft);
        }
        let display = doc.get("display").and_then(toml::Value::as_table);
        let operators = doc
            .get("operators")
            .and_then(toml::Value::as_array)
            .map(|list| list.iter().map(text_of).collect())
            .unwrap_or_default();
        Draft {
            operator: get("operator"),
            operators,
            language: if get("language") == "en" {
                Language::En
            } else {
                Language::Zh
            },
            theme: if get("theme") == "light" {
                Theme::Light
            } else {
                Theme::Dark
            },
            day_start: get("day_start"),
            default_provider: get("default_provider"),
            listener_enabled: listener_get("enabled")
                .and_then(toml::Value::as_bool)
                .unwrap_or(true),
            listen: listener_get("listen")
                .map(text_of)
                .unwrap_or_else(|| config::DEFAULT_LISTEN.to_string()),
            public_url: listener_get("public_url").map(text_of).unwrap_or_default(),
            sound: {
                let sound = doc.get("sound").and_then(toml::Value::as_table);
                let defaults = SoundSettings::default();
                SoundSettings {
                    enabled: sound
                        .and_then(|t| t.get("enabled"))
                        .and_then(toml::Value::as_bool)
                        .unwrap_or(defaults.enabled),
                    volume: sound
                        .and_then(|t| t.get("volume"))
                        .and_then(toml::Value::as_integer)
                        .and_then(|v| u8::try_from(v).ok())
                        .unwrap_or(defaults.volume),
                }
            },
            display: {
                let get = |key: &str| display.and_then(|t| t.get(key));
                let defaults = DisplaySettings::default();
                DisplaySettings {
                    enabled: get("enabled")
                        .and_then(toml::Value::as_bool)
                        .unwrap_or(defaults.enabled),
                    shop_name: get("shop_name").map(text_of).unwrap_or_default(),
                    fullscreen: get("fullscreen")
                        .and_then(toml::Value::as_bool)
                        .unwrap_or(defaults.fullscreen),
                    ..defaults
                }
            },
            display_position: display
                .and_then(|t| t.get("position"))
                .map(text_of)
                .unwrap_or_else(|| DisplaySettings::default().position_text()),
            providers,
        }
    }

    /// The config document of this draft over `old` (the file as read): keys the screen does
    /// not edit are kept; an empty merchant-key field takes the key `old` holds for the
    /// account. Demo accounts are left out.
    pub fn to_document(&self, old: &toml::Table) -> toml::Table {
        let mut doc = old.clone();
        let mut set = |key: &str, value: Option<toml::Value>| match value {
            Some(value) => {
                doc.insert(key.to_string(), value);
            }
            None => {
                doc.remove(key);
            }
        };
        let text = |s: &str| (!s.trim().is_empty()).then(|| toml::Value::from(s.trim()));
        set("operator", text(&self.operator));
        set(
            "operators",
            (!self.operators.is_empty()).then(|| {
                toml::Value::Array(self.operators.iter().map(|n| n.as_str().into()).collect())
            }),
        );
        set("language", Some(self.language.as_str().into()));
        set("theme", Some(self.theme.as_str().into()));
        set("day_start", text(&self.day_start));
        set("default_provider", text(&self.default_provider));
        let mut listener = toml::Table::new();
        listener.insert("enabled".into(), self.listener_enabled.into());
        listener.insert(
            "listen".into(),
            text(&self.listen).unwrap_or_else(|| config::DEFAULT_LISTEN.into()),
        );
        if let Some(url) = text(&self.public_url) {
            listener.insert("public_url".into(), url);
        }
        set("listener", Some(toml::Value::Table(listener)));
        let mut sound = toml::Table::new();
        sound.insert("enabled".into(), self.sound.enabled.into());
        sound.insert("volume".into(), i64::from(self.sound.volume).into());
        set("sound", Some(toml::Value::Table(sound)));
        // Written when the file had it or it is no longer the default (a file without it
        // reads back the same).
        let default_display = DisplaySettings::default();
        if old.contains_key("display")
            || self.display != default_display
            || self.display_position.trim() != default_display.position_text()
        {
            let mut display = toml::Table::new();
            display.insert("enabled".into(), self.display.enabled.into());
            display.insert("shop_name".into(), self.display.shop_name.trim().into());
            // Written as typed: the check names `position` and what is allowed.
            display.insert("position".into(), self.display_position.trim().into());
            display.insert("fullscreen".into(), self.display.fullscreen.into());
            set("display", Some(toml::Value::Table(display)));
        }
        let old_accounts: Vec<&toml::Table> = old
            .get("provider")
            .and_then(toml::Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(toml::Value::as_table)
            .collect();
        let accounts: Vec<toml::Value> = self
            .providers
            .iter()
            .filter(|p| !p.demo)
            .map(|p| {
                let stored = p.original_id.as_deref().and_then(|id| {
                    old_accounts
                        .iter()
                        .find(|t| t.get("id").and_then(toml::Value::as_str) == Some(id))
                });
                let mut table = toml::Table::new();
                table.insert("id".into(), p.id.trim().into());
                table.insert("kind".into(), p.kind.into());
                for field in &p.fields {
                    let value = match text(&field.text) {
                        Some(value) => Some(value),
                        // An empty key field keeps the stored key.
                        None if field.field.secret => {
                            stored.and_then(|t| t.get(field.field.name)).cloned()
                        }
                        None => None,
                    };
                    if let Some(value) = value {
                        table.insert(field.field.name.into(), value);
                    }
                }
                toml::Value::Table(table)
            })
            .collect();
        set(
            "provider",
            (!accounts.is_empty()).then_some(toml::Value::Array(accounts)),
        );
        doc
    }

    /// Builds one account of the draft as the till would use it, resolving a kept merchant
    /// key from `old`, for "test connection".
    ///
    /// # Errors
    /// The account's config error (naming the key), as the file would get it.
    pub fn account(&self, index: usize, old: &toml::Table) -> Result<Arc<dyn Provider>, String> {
        let draft = self
            .providers
            .get(index)
            .ok_or("no such provider account")?;
        let single = Draft {
            providers: vec![ProviderDraft {
                demo: false,
                ..draft.clone()
            }],
            ..self.clone()
        };
        let doc = single.to_document(old);
        let table = doc
            .get("provider")
            .and_then(toml::Value::as_array)
            .and_then(|list| list.first())
            .and_then(toml::Value::as_table)
            .cloned()
            .unwrap_or_default();
        let mut table = table;
        table.remove("id");
        table.remove("kind");
        let kind = providers::kind(draft.kind).ok_or("unknown kind")?;
        let id = draft.id.trim();
        (kind.from_table)(id, &table)
            .map_err(|message| format!("[[provider]] `{id}` (kind {}): {message}", draft.kind))
    }
}

/// How the till shows an account (built here, at the edge, so the UI never handles a
/// provider).
pub fn provider_info(provider: &dyn Provider) -> crate::app::state::ProviderInfo {
    crate::app::state::ProviderInfo {
        id: provider.id().to_string(),
        name: provider.display_name().to_string(),
        channels: provider.channels().to_vec(),
        can_query: provider.can_query(),
        browser_needed: provider.payer_browser_needed(),
        account: None,
    }
}

/// The protocols a new account can speak: config name and name for people.
pub fn kinds() -> Vec<(&'static str, &'static str)> {
    providers::KINDS
        .iter()
        .map(|kind| (kind.name, kind.display_name))
        .collect()
}

/// Reads a config file as a document (`None` when it does not exist: demo mode).
///
/// # Errors
/// A message naming the file when it cannot be read or is not TOML.
pub fn read_document(path: &Path) -> Result<Option<toml::Table>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => text
            .parse::<toml::Table>()
            .map(Some)
            .map_err(|err| format!("config file {}: {}", path.display(), err.message())),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(format!(
            "config file {}: cannot read it: {err}",
            path.display()
        )),
    }
}

/// Validates the draft over `old` and writes it to `path` (0600); returns the config as the
/// till now reads it and the document written.
///
/// # Errors
/// The config error (naming the key, never a merchant key's value), or why the file cannot
/// be written.
pub fn save(
    path: &Path,
    old: &toml::Table,
    draft: &Draft,
) -> Result<(Config, toml::Table), String> {
    let doc = draft.to_document(old);
    let text = toml::to_string(&doc).map_err(|err| format!("cannot write the settings: {err}"))?;
    Config::parse(&text).map_err(|message| format!("config file {}: {message}", path.display()))?;
    if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder)
            .map_err(|err| format!("cannot create the folder {}: {err}", folder.display()))?;
    }
    config::write_private(path, &text).map_err(|err| err.to_string())?;
    let config = Config::load(path).map_err(|err| err.to_string())?;
    Ok((config, doc))
}

/// The till's side of the settings screen: holds the file as last read or written, saves a
/// draft off the UI thread and applies it to the running service and listener.
pub struct SettingsHost {
    path: PathBuf,
    /// The file as last read or written.
    document: toml::Table,
    /// Demo mode: the built-in sandbox's accounts and their config, which stay in use until
    /// the till is restarted with a saved file.
    demo: Option<(Vec<Arc<dyn Provider>>, toml::Table)>,
    service: ServiceHandle,
    runtime: tokio::runtime::Handle,
    listener: Arc<tokio::sync::Mutex<Option<(ListenerConfig, Listener)>>>,
    done: (
        std::sync::mpsc::Sender<SaveOutcome>,
        std::sync::mpsc::Receiver<SaveOutcome>,
    ),
    repaint: Arc<dyn Fn() + Send + Sync>,
}

/// What a save ended with: the applied settings, or why nothing was applied.
pub type SaveOutcome = Result<Applied, String>;

/// A saved (or, in demo mode, applied) draft.
#[derive(Debug)]
pub struct Applied {
    /// The settings now in use.
    pub config: Config,
    /// The file as written (`None` when nothing was written).
    pub document: Option<toml::Table>,
    /// What happened, for staff.
    pub message: String,
}

impl SettingsHost {
    /// A host for the till started from `path` (`demo`: the sandbox's config text when the
    /// till runs in demo mode), with the listener it started.
    ///
    /// # Errors
    /// When the config file cannot be read as TOML.
    pub fn new(
        path: &Path,
        demo: Option<(&Config, &str)>,
        service: ServiceHandle,
        listener: Option<(ListenerConfig, Listener)>,
        repaint: Arc<dyn Fn() + Send + Sync>,
    ) -> Result<SettingsHost, String> {
        let document = read_document(path)?.unwrap_or_default();
        let demo = match demo {
            Some((config, text)) => Some((
                config.providers.clone(),
                text.parse::<toml::Table>()
                    .map_err(|err| format!("demo config: {}", err.message()))?,
            )),
            None => None,
        };
        Ok(SettingsHost {
            path: path.to_path_buf(),
            document,
            demo,
            service,
            runtime: tokio::runtime::Handle::current(),
            listener: Arc::new(tokio::sync::Mutex::new(listener)),
            done: std::sync::mpsc::channel(),
            repaint,
        })
    }

    /// The config file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The settings as they are now, for editing.
    pub fn draft(&self) -> Draft {
        let demo = self.demo.as_ref().map(|(p, _)| p.as_slice()).unwrap_or(&[]);
        let mut draft = Draft::from_document(&self.document, demo);
        if self.document.is_empty() {
            // Demo mode before a first save: start from what the till runs with.
            if let Some((_, doc)) = &self.demo {
                let shown = Draft::from_document(doc, &[]);
                draft.operator = shown.operator;
                draft.default_provider = shown.default_provider;
            }
        }
        draft
    }

    /// Starts a connection test of account `index` of `draft`; the verdict arrives as a
    /// service event.
    ///
    /// # Errors
    /// The account's config error, at once, when it cannot even be built.
    pub fn test(&self, draft: &Draft, index: usize) -> Result<(), String> {
        let chosen = draft
            .providers
            .get(index)
            .ok_or("no such provider account")?;
        let account = match &self.demo {
            // A demo account is the sandbox's own, as the till runs it.
            Some((accounts, _)) if chosen.demo => accounts
                .iter()
                .find(|p| p.id() == chosen.id)
                .cloned()
                .ok_or("no such provider account")?,
            _ => draft.account(index, &self.document)?,
        };
        self.service.test_connection(account);
        Ok(())
    }

    /// Saves `draft` and applies it, off the UI thread; the outcome comes from [`Self::poll`].
    pub fn save(&self, draft: Draft) {
        let path = self.path.clone();
        let old = self.document.clone();
        let demo = self.demo.clone();
        let service = self.service.clone();
        let listener = self.listener.clone();
        let done = self.done.0.clone();
        let repaint = self.repaint.clone();
        self.runtime.spawn(async move {
            let outcome = save_and_apply(path, old, demo, draft, service, listener).await;
            let _ = done.send(outcome);
            repaint();
        });
    }

    /// The outcome of a finished save, if any.
    pub fn poll(&mut self) -> Option<SaveOutcome> {
        let outcome = self.done.1.try_recv().ok()?;
        if let Ok(Applied {
            document: Some(doc),
            ..
        }) = &outcome
        {
            self.document = doc.clone();
        }
        Some(outcome)
    }
}

async fn save_and_apply(
    path: PathBuf,
    old: toml::Table,
    demo: Option<(Vec<Arc<dyn Provider>>, toml::Table)>,
    draft: Draft,
    service: ServiceHandle,
    listener: Arc<tokio::sync::Mutex<Option<(ListenerConfig, Listener)>>>,
) -> Result<Applied, String> {
    let real_accounts = draft.providers.iter().any(|p| !p.demo);
    let (config, document, message) = match &demo {
        // Demo mode with no account of the shop's own: nothing to write; the settings are
        // checked against the sandbox's accounts and used for this run.
        Some((_, demo_doc)) if !real_accounts => {
            let mut doc = draft.to_document(&old);
            doc.insert(
                "provider".into(),
                demo_doc
                    .get("provider")
                    .cloned()
                    .unwrap_or(toml::Value::Array(Vec::new())),
            );
            let text = toml::to_string(&doc).map_err(|err| err.to_string())?;
            let config = Config::parse(&text)?;
            (
                config,
                None,
                "演示模式: 设置已用于本次运行; 添加自己的支付平台账户后保存才写入配置文件 / demo mode: \
                 applied to this run; add an account of your own to save a config file"
                    .to_string(),
            )
        }
        _ => {
            let (path2, old2, draft2) = (path.clone(), old.clone(), draft.clone());
            let (config, doc) = tokio::task::spawn_blocking(move || save(&path2, &old2, &draft2))
                .await
                .map_err(|err| format!("saving failed: {err}"))??;
            let message = if demo.is_some() {
                format!(
                    "已保存到 {p}; 重启 qrtill 后用新账户正式收款 / saved to {p}: restart qrtill to take real payments",
                    p = path.display()
                )
            } else {
                format!("已保存并生效 / saved and applied: {}", path.display())
            };
            (config, Some(doc), message)
        }
    };
    let mut slot = listener.lock().await;
    let changed = slot.as_ref().map(|(c, _)| c) != Some(&config.listener);
    let mut notes = Vec::new();
    if changed && demo.is_none() {
        if let Some((_, old_listener)) = slot.take() {
            old_listener
                .shutdown(std::time::Duration::from_secs(3))
                .await;
        }
        if config.listener.enabled {
            match listener::bind(config.listener.listen).await {
                Ok(socket) => match listener::serve(socket, service.clone()) {
                    Ok(running) => *slot = Some((config.listener.clone(), running)),
                    Err(err) => notes.push(format!("callback listener: {err}")),
                },
                Err(err) => notes.push(format!(
                    "回调监听无法绑定 {addr}: {err} / the callback listener cannot bind {addr}: {err}",
                    addr = config.listener.listen
                )),
            }
        }
    }
    let bound = slot.as_ref().map(|(_, l)| l.addr);
    drop(slot);
    let mut applied = service_config(&config, bound);
    if let Some((providers, _)) = &demo {
        applied.providers = providers.clone();
        applied.notify_base = service.notify_base();
    }
    service.reconfigure(applied);
    let mut message = message;
    for note in notes {
        message.push_str("; ");
        message.push_str(&note);
    }
    Ok(Applied {
        config,
        document,
        message,
    })
}

/// What the service needs of a config, with the listener's bound address (demo mode and the
/// sandbox are the caller's to set).
pub fn service_config(config: &Config, bound: Option<std::net::SocketAddr>) -> ServiceConfig {
    let notify_base = match (&config.listener.public_url, bound) {
        (Some(url), _) => url.clone(),
        (None, Some(addr)) => format!("http://{addr}"),
        (None, None) => format!("http://{}", config.listener.listen),
    };
    ServiceConfig {
        providers: config.providers.clone(),
        order_timeout: config.order_timeout,
        late_grace: config.late_grace,
        demo: false,
        sandbox_control: None,
        notify_base,
        public_url: config.listener.public_url.clone(),
        day_start: config.day_start,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    const KEY: &str = "Sk-settings-never-shown-9f3a";

    fn file_text() -> String {
        format!(
            "operator = \"张三\"\noperators = [\"张三\", \"李四\"]\nlanguage = \"en\"\ntheme = \"light\"\n\
             day_start = \"04:00\"\ndefault_provider = \"main\"\nmax_amount = \"2000.00\"\n\
             order_timeout_secs = 240\n\n[sound]\nenabled = false\nvolume = 35\n\n[listener]\nenabled = true\nlisten = \"0.0.0.0:8765\"\n\
             public_url = \"https://shop.example\"\n\n[[provider]]\nid = \"main\"\nkind = \"ispay\"\n\
             userid = \"10001\"\nkey = \"{KEY}\"\nclient_ip = \"10.0.0.2\"\n\n[[provider]]\n\
             id = \"spare\"\nkind = \"vmq\"\nbase_url = \"https://vmq.example\"\nkey = \"{KEY}x\"\n"
        )
    }

    #[test]
    fn a_file_round_trips_through_the_draft_unchanged_and_keys_never_enter_it() {
        let doc: toml::Table = file_text().parse().unwrap();
        let draft = Draft::from_document(&doc, &[]);
        assert!(!format!("{draft:?}").contains(KEY), "{draft:?}");
        assert_eq!(draft.operators, ["张三", "李四"]);
        assert_eq!(draft.providers.len(), 2);
        let key = &draft.providers[0].fields[2];
        assert_eq!(
            (key.field.name, key.stored, key.text.as_str()),
            ("key", true, "")
        );
        assert_eq!(draft.to_document(&doc), doc);

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let (config, written) = save(&path, &doc, &draft).unwrap();
        assert_eq!(written, doc);
        assert_eq!(config.operator, "张三");
        assert_eq!(config.theme, Theme::Light);
        assert_eq!(config.max_amount, crate::model::Fen(200_000));
        let reread = read_document(&path).unwrap().unwrap();
        assert_eq!(reread, doc);
        assert_eq!(Draft::from_document(&reread, &[]), draft);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }

    #[test]
    fn a_new_key_replaces_the_stored_one_and_a_renamed_account_keeps_its_key() {
        let doc: toml::Table = file_text().parse().unwrap();
        let mut draft = Draft::from_document(&doc, &[]);
        draft.providers[0].id = "front".into();
        draft.default_provider = "front".into();
        draft.providers[1].fields[1].text = "new-key-typed".into();
        let out = draft.to_document(&doc);
        let accounts = out["provider"].as_array().unwrap();
        assert_eq!(accounts[0]["id"].as_str(), Some("front"));
        assert_eq!(accounts[0]["key"].as_str(), Some(KEY));
        assert_eq!(accounts[1]["key"].as_str(), Some("new-key-typed"));
    }

    #[test]
    fn a_draft_the_till_would_refuse_is_not_written() {
        let doc: toml::Table = file_text().parse().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        // A new account without its merchant key.
        let mut draft = Draft::from_document(&doc, &[]);
        let mut new = ProviderDraft::new("epay", "third").unwrap();
        new.fields[0].text = "https://epay.example".into();
        new.fields[1].text = "1000".into();
        draft.providers.push(new);
        let err = save(&path, &doc, &draft).unwrap_err();
        assert!(err.contains("third") && err.contains("`key`"), "{err}");
        assert!(!path.exists());
        // A bad day start names the key.
        let mut draft = Draft::from_document(&doc, &[]);
        draft.day_start = "25:00".into();
        let err = save(&path, &doc, &draft).unwrap_err();
        assert!(err.contains("day_start"), "{err}");
        assert!(!err.contains(KEY), "{err}");
        assert!(!path.exists());
    }

    #[test]
    fn an_account_for_the_connection_test_uses_the_stored_key() {
        let doc: toml::Table = file_text().parse().unwrap();
        let draft = Draft::from_document(&doc, &[]);
        let account = draft.account(0, &doc).unwrap();
        assert_eq!((account.id(), account.kind()), ("main", "ispay"));
        let mut draft = draft;
        draft.providers[0].fields[1].text = "not-a-number".into();
        let err = draft.account(0, &doc).unwrap_err();
        assert!(err.contains("userid"), "{err}");
    }
}
