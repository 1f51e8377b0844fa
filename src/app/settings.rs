//! The settings screen's view model (F4): the draft being edited, the chosen account, what
//! each connection test said, and the requests for the app to carry out (save, test).
//!
//! Invariant: a merchant key typed here lives only in the draft until it is saved; after a
//! save the draft is read back from the file, where a stored key is only marked as set, so a
//! key is never shown again.

use crate::service::ConnectionVerdict;
use crate::settings::{Draft, ProviderDraft};

/// What the settings screen asks the app to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SettingsRequest {
    /// Validate, write and apply this draft.
    Save(Draft),
    /// Test the connection of account N of this draft.
    Test(Draft, usize),
}

/// The settings screen's state.
#[derive(Debug, Default)]
pub struct SettingsState {
    /// The draft being edited (`None` until the screen is first opened or after a save).
    pub draft: Option<Draft>,
    /// The account shown on the right.
    pub selected: usize,
    /// The operators as typed: names separated by commas.
    pub operators_text: String,
    /// The protocol a new account gets.
    pub new_kind: &'static str,
    /// The outcome of the last save or check: `Ok` words or `Err` words.
    pub message: Option<Result<String, String>>,
    /// What the last connection test of each account said, by account id.
    pub tests: Vec<(String, Result<String, String>)>,
    /// A save is under way.
    pub saving: bool,
    /// The first field takes the keyboard focus on the next frame (the screen was opened), so
    /// staff can type at once and Tab on from there.
    pub focus_first: bool,
    /// Requests for the app.
    pub outbox: Vec<SettingsRequest>,
}

impl SettingsState {
    /// Starts editing `draft` (the settings as they are now), unless a draft is open.
    pub fn open(&mut self, draft: Draft) {
        self.focus_first = true;
        if self.draft.is_none() {
            self.operators_text = draft.operators.join(", ");
            self.selected = 0;
            self.draft = Some(draft);
        }
    }

    /// Asks for the draft to be saved; the operators text becomes the list.
    pub fn save(&mut self) {
        let Some(draft) = self.draft.as_mut() else {
            return;
        };
        draft.operators = self
            .operators_text
            .split([',', '，', ';', '；'])
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(str::to_string)
            .collect();
        self.saving = true;
        self.message = None;
        self.outbox.push(SettingsRequest::Save(draft.clone()));
    }

    /// A save ended: on success the draft is dropped, to be read back from the file.
    pub fn saved(&mut self, outcome: Result<String, String>) {
        self.saving = false;
        if outcome.is_ok() {
            self.draft = None;
        }
        self.message = Some(outcome);
    }

    /// Asks for a connection test of the chosen account.
    pub fn test_selected(&mut self) {
        if let Some(draft) = &self.draft
            && self.selected < draft.providers.len()
        {
            self.outbox
                .push(SettingsRequest::Test(draft.clone(), self.selected));
        }
    }

    /// Records a test's verdict for an account: `Ok` when the credentials work.
    pub fn tested(&mut self, provider_id: &str, verdict: Result<String, String>) {
        self.tests.retain(|(id, _)| id != provider_id);
        self.tests.push((provider_id.to_string(), verdict));
    }

    /// The last test verdict of an account.
    pub fn test_of(&self, provider_id: &str) -> Option<&Result<String, String>> {
        self.tests
            .iter()
            .find(|(id, _)| id == provider_id)
            .map(|(_, verdict)| verdict)
    }

    /// Adds a new account of the chosen protocol, with a free id, and shows it.
    pub fn add_account(&mut self) {
        let kind = if self.new_kind.is_empty() {
            "ispay"
        } else {
            self.new_kind
        };
        let Some(draft) = self.draft.as_mut() else {
            return;
        };
        let id = (1..)
            .map(|n| format!("{kind}{n}"))
            .find(|id| !draft.providers.iter().any(|p| &p.id == id))
            .unwrap_or_default();
        if let Some(account) = ProviderDraft::new(kind, &id) {
            draft.providers.push(account);
            self.selected = draft.providers.len() - 1;
        }
    }

    /// Removes the chosen account (not a demo one).
    pub fn remove_selected(&mut self) {
        let Some(draft) = self.draft.as_mut() else {
            return;
        };
        if draft.providers.get(self.selected).is_some_and(|p| !p.demo) {
            let removed = draft.providers.remove(self.selected);
            if draft.default_provider == removed.id {
                draft.default_provider = draft
                    .providers
                    .first()
                    .map(|p| p.id.clone())
                    .unwrap_or_default();
            }
            self.selected = self.selected.min(draft.providers.len().saturating_sub(1));
        }
    }

    /// Moves the chosen account up or down the list.
    pub fn move_selection(&mut self, by: isize) {
        let count = self.draft.as_ref().map_or(0, |d| d.providers.len());
        if count > 0 {
            self.selected = self.selected.saturating_add_signed(by).min(count - 1);
        }
    }
}

/// A connection verdict in words for staff, `Ok` when the credentials work.
pub fn verdict_words(verdict: &ConnectionVerdict, en: bool) -> Result<String, String> {
    let pick = |zh: &str, e: &str| if en { e.to_string() } else { zh.to_string() };
    let with = |head: String, detail: &str| {
        if detail.is_empty() {
            head
        } else {
            format!("{head}: {detail}")
        }
    };
    match verdict {
        ConnectionVerdict::Accepted(detail) => Ok(with(
            pick(
                "连接正常, 平台接受了签名",
                "Connected: the provider accepted the signed call",
            ),
            detail,
        )),
        ConnectionVerdict::Refused(detail) => Err(with(
            pick(
                "平台拒绝了商户号或密钥",
                "The provider refused the merchant id or key",
            ),
            detail,
        )),
        ConnectionVerdict::Unreachable(detail) => Err(with(
            pick(
                "连不上平台或回答看不懂",
                "Cannot reach the provider, or its answer is not understood",
            ),
            detail,
        )),
        ConnectionVerdict::Unproven(detail) => Err(with(
            pick(
                "此平台没有可在收款前验证密钥的接口",
                "This provider has no call that proves the key before a sale",
            ),
            detail,
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    fn draft() -> Draft {
        let doc: toml::Table = "operator = \"A\"\n[[provider]]\nid = \"main\"\nkind = \"vmq\"\n\
                                base_url = \"https://v.example\"\nkey = \"k\"\n"
            .parse()
            .unwrap();
        Draft::from_document(&doc, &[])
    }

    #[test]
    fn accounts_are_added_with_free_ids_and_removed_with_the_default_moved() {
        let mut s = SettingsState::default();
        s.open(draft());
        s.new_kind = "vmq";
        s.add_account();
        s.add_account();
        let ids: Vec<_> = s
            .draft
            .as_ref()
            .unwrap()
            .providers
            .iter()
            .map(|p| p.id.clone())
            .collect();
        assert_eq!(ids, ["main", "vmq1", "vmq2"]);
        assert_eq!(s.selected, 2);
        s.draft.as_mut().unwrap().default_provider = "vmq2".into();
        s.remove_selected();
        assert_eq!(s.draft.as_ref().unwrap().default_provider, "main");
        assert_eq!(s.selected, 1);
    }

    #[test]
    fn operators_typed_with_commas_become_the_list_and_a_save_rereads() {
        let mut s = SettingsState::default();
        s.open(draft());
        s.operators_text = "张三，李四, , 王五".into();
        s.save();
        let SettingsRequest::Save(saved) = &s.outbox[0] else {
            panic!("{:?}", s.outbox)
        };
        assert_eq!(saved.operators, ["张三", "李四", "王五"]);
        assert!(s.saving);
        s.saved(Ok("saved".into()));
        assert!(s.draft.is_none() && !s.saving);
        s.saved(Err("bad".into()));
        assert_eq!(s.message, Some(Err("bad".into())));
    }
}
