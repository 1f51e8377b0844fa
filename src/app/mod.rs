//! The eframe app: drains service events into the view model (`logic`), draws the screens
//! (`ui`), and turns key presses and clicks into service commands.
//!
//! Invariants: the UI thread never blocks or awaits (it only sends commands and reads
//! events); it repaints only when an event arrives, on input, or on a timer that something on
//! screen needs (the countdown, the paid screen's return).

pub mod fonts;
pub mod history;
pub mod settings;
pub mod state;

use std::time::{Duration, Instant};

use egui::{Event as InputEvent, Key};

use self::history::View;
use self::settings::SettingsRequest;
use self::state::{Action, PadKey, Screen, TillState};
use crate::model::OrderNo;
use crate::service::{ChargeRequest, Command, EventReceiver, ServiceHandle};
use crate::sound::{Sound, SoundSettings};
use crate::ui;

/// The till.
pub struct TillApp {
    /// The view model (public for tests).
    pub state: TillState,
    service: ServiceHandle,
    events: EventReceiver,
    textures: ui::QrTextures,
    customer: ui::CustomerDisplay,
    frames: Option<crate::frames::FrameLog>,
    first_frame: crate::frames::FirstFrame,
    settings: Option<crate::settings::SettingsHost>,
    /// The colours last given to egui.
    theme: Option<crate::config::Theme>,
    /// The paid chime and announcement; settings change through [`Sound::set`].
    pub sound: Sound,
}

impl TillApp {
    /// Builds the app on an egui context: installs fonts and style. Silent until
    /// [`TillApp::with_sound`] gives it the configured sound settings.
    pub fn new(
        ctx: &egui::Context,
        state: TillState,
        service: ServiceHandle,
        events: EventReceiver,
    ) -> Self {
        fonts::install(ctx);
        fonts::style(ctx);
        let mut state = state;
        state.day_start = service.day_start();
        TillApp {
            state,
            service,
            events,
            textures: ui::QrTextures::default(),
            customer: ui::CustomerDisplay::default(),
            frames: crate::frames::FrameLog::from_env(),
            first_frame: crate::frames::FirstFrame::from_env(),
            settings: None,
            theme: None,
            sound: Sound::new(SoundSettings {
                enabled: false,
                ..SoundSettings::default()
            }),
        }
    }

    /// Gives the till its settings screen: where to save and how to apply.
    #[must_use]
    pub fn with_settings(mut self, host: crate::settings::SettingsHost) -> Self {
        self.settings = Some(host);
        self
    }

    /// Opens a screen; the settings screen starts from the settings in use.
    fn open_view(&mut self, view: View) {
        if view == View::Settings
            && let Some(host) = &self.settings
        {
            self.state.settings.open(host.draft());
        }
        self.state.open_view(view);
    }

    /// Carries out the settings screen's requests and takes a finished save.
    fn settings_work(&mut self) {
        let requests: Vec<_> = self.state.settings.outbox.drain(..).collect();
        for request in requests {
            match (request, &self.settings) {
                (SettingsRequest::Save(draft), Some(host)) => host.save(draft),
                (SettingsRequest::Test(draft, index), Some(host)) => {
                    if let Err(message) = host.test(&draft, index) {
                        let id = draft.providers.get(index).map(|p| p.id.clone());
                        self.state
                            .settings
                            .tested(&id.unwrap_or_default(), Err(message));
                    }
                }
                (_, None) => self.state.settings.saved(Err(
                    "no config file location: settings cannot be saved here".into(),
                )),
            }
        }
        let Some(outcome) = self.settings.as_mut().and_then(|host| host.poll()) else {
            return;
        };
        match outcome {
            Ok(applied) => {
                self.state.apply_config(&applied.config);
                self.sound.set(applied.config.sound);
                self.state.settings.saved(Ok(applied.message));
                if self.state.view == View::Settings
                    && let Some(host) = &self.settings
                {
                    self.state.settings.open(host.draft());
                }
            }
            Err(message) => self.state.settings.saved(Err(message)),
        }
    }

    /// Plays the paid sound with these settings (config `[sound]`).
    pub fn with_sound(mut self, settings: SoundSettings) -> Self {
        self.sound.set(settings);
        self
    }

    /// Runs an action from a key or a click.
    fn run(&mut self, action: Action) {
        match action {
            Action::Charge { amount, channel } => {
                let order_no = self.service.charge(ChargeRequest {
                    amount,
                    channel,
                    provider_id: self.state.provider_id.clone(),
                    subject: String::new(),
                    operator: self.state.operator.clone(),
                });
                self.state.charging(order_no);
            }
            Action::Cancel(order_no) => self.service.send(Command::Cancel(order_no)),
            Action::SimulatePayment(order_no) => {
                self.service.send(Command::SimulatePayment(order_no))
            }
            Action::QueryNow(order_no) => self.service.send(Command::QueryNow(order_no)),
        }
    }

    /// Keys: digits and `.` type the amount; Backspace; Enter charges; Esc clears or cancels;
    /// 1–4 pick the channel in the channel step; F5 queries now; F6 switches the provider for
    /// the next sale; F9 simulates the payment in demo mode; F11 toggles full screen.
    fn keys(&mut self, ctx: &egui::Context, events: Vec<InputEvent>) -> Vec<Action> {
        let mut actions = Vec::new();
        for event in events {
            match event {
                InputEvent::Text(text) => {
                    for ch in text.chars() {
                        actions.extend(self.char_key(ch));
                    }
                }
                InputEvent::Key {
                    key,
                    pressed: true,
                    modifiers,
                    ..
                } if self.state.view == View::Settings && modifiers.command && key == Key::S => {
                    self.state.settings.save();
                }
                InputEvent::Key {
                    key,
                    pressed: true,
                    modifiers,
                    ..
                } if !modifiers.ctrl && !modifiers.alt && !modifiers.command => {
                    if key == Key::F11 {
                        // Full screen for the customer-facing QR; F11 again to leave it.
                        let full = ctx.input(|i| i.viewport().fullscreen.unwrap_or(false));
                        ctx.send_viewport_cmd(egui::ViewportCommand::Fullscreen(!full));
                    }
                    actions.extend(match key {
                        Key::F1 => {
                            self.open_view(View::Till);
                            None
                        }
                        Key::F2 => {
                            self.open_view(View::History);
                            None
                        }
                        Key::F3 => {
                            self.open_view(View::Closes);
                            None
                        }
                        Key::F4 => {
                            self.open_view(View::Settings);
                            None
                        }
                        // The settings screen's keys work from inside its fields.
                        _ if self.state.view == View::Settings => {
                            self.settings_key(key);
                            None
                        }
                        // While staff type in a field (the history's date) or a menu is
                        // open (a filter), the keys are the field's or the menu's.
                        _ if self.state.view != View::Till
                            && (ctx.egui_wants_keyboard_input()
                                || egui::Popup::is_any_open(ctx)) =>
                        {
                            None
                        }
                        _ => match self.state.view {
                            View::Till => self.named_key(key),
                            View::History => self.history_key(key),
                            View::Closes => {
                                self.closes_key(key);
                                None
                            }
                            View::Settings => None,
                        },
                    });
                }
                _ => {}
            }
        }
        actions
    }

    fn char_key(&mut self, ch: char) -> Option<Action> {
        if self.state.view != View::Till {
            return None;
        }
        if self.state.picking_operator {
            if let Some(n) = ch.to_digit(10).and_then(|d| usize::try_from(d).ok()) {
                self.state.pick_operator(n);
            }
            return None;
        }
        match (&self.state.screen, ch) {
            (Screen::Till, '0'..='9') => {
                let digit = ch.to_digit(10).and_then(|d| u8::try_from(d).ok())?;
                self.state.press(PadKey::Digit(digit));
                None
            }
            (Screen::Till, '.' | '。') => {
                self.state.press(PadKey::Dot);
                None
            }
            (Screen::PickChannel, '1'..='9') => {
                let n = ch.to_digit(10).and_then(|d| usize::try_from(d).ok())?;
                let channel = self.state.channel_key(n)?;
                self.state.pick_channel(channel)
            }
            _ => None,
        }
    }

    fn named_key(&mut self, key: Key) -> Option<Action> {
        if self.state.picking_operator {
            if key == Key::Escape {
                self.state.picking_operator = false;
            }
            return None;
        }
        match key {
            Key::F10
                if self.state.operators.len() > 1
                    && matches!(self.state.screen, Screen::Till | Screen::PickChannel) =>
            {
                self.state.picking_operator = true;
                None
            }
            Key::Enter => self.state.enter(),
            Key::Escape => self.state.escape(),
            Key::Backspace => {
                self.state.press(PadKey::Backspace);
                None
            }
            Key::Delete => {
                self.state.press(PadKey::Clear);
                None
            }
            Key::F9 if self.state.demo => self.qr_order().map(Action::SimulatePayment),
            Key::F5 => self.qr_order().map(Action::QueryNow),
            Key::F6 => {
                self.state.next_provider();
                None
            }
            _ => None,
        }
    }

    /// History keys: Left/Right or PageUp/PageDown a day back/on, Home today, Up/Down the
    /// row, Enter the detail, F5 query again, F7 export the day, Esc close the detail or leave.
    fn history_key(&mut self, key: Key) -> Option<Action> {
        let history = &mut self.state.history;
        match key {
            Key::ArrowLeft | Key::PageUp => self.state.move_day(-1),
            Key::ArrowRight | Key::PageDown => self.state.move_day(1),
            Key::Home => {
                let today = self.state.today();
                self.state.history.show_day(today);
            }
            Key::ArrowUp => history.move_selection(-1),
            Key::ArrowDown => history.move_selection(1),
            Key::Enter => history.open_detail(),
            Key::F5 => return history.queryable().map(Action::QueryNow),
            Key::F7 => {
                if let Some(date) = history.date {
                    history.export_days(date, date);
                }
            }
            // Esc closes the detail, or else leaves the screen.
            Key::Escape if !history.close_detail() => self.state.open_view(View::Till),
            _ => {}
        }
        None
    }

    /// Settings keys (they work while a field has the focus): Ctrl+S save and apply, F5 test
    /// the chosen account, F7 add an account, F8 remove it, PageUp/PageDown choose another,
    /// Esc back to the till (the draft stays until saved).
    fn settings_key(&mut self, key: Key) {
        let settings = &mut self.state.settings;
        match key {
            Key::F5 => settings.test_selected(),
            Key::F7 => settings.add_account(),
            Key::F8 => settings.remove_selected(),
            Key::PageUp => settings.move_selection(-1),
            Key::PageDown => settings.move_selection(1),
            Key::Escape => self.state.open_view(View::Till),
            _ => {}
        }
    }

    /// Closes keys: Up/Down pick a close, F8 close the day (asks first), Enter confirms,
    /// F7 exports the shown close, Esc cancels the confirmation or leaves.
    fn closes_key(&mut self, key: Key) {
        let operator = self.state.operator.clone();
        let history = &mut self.state.history;
        match key {
            Key::ArrowUp => history.move_close(-1),
            Key::ArrowDown => history.move_close(1),
            Key::F8 => history.outbox.push(Command::PreviewClose { operator }),
            Key::Enter if history.preview.is_some() => {
                history.outbox.push(Command::CloseDay { operator });
            }
            Key::F7 => {
                if let Some(number) = history.shown_close().map(|c| c.number) {
                    history.export_close(number);
                }
            }
            // Esc cancels the confirmation, or else leaves the screen.
            Key::Escape if history.preview.take().is_none() => self.state.open_view(View::Till),
            _ => {}
        }
    }

    /// Sends what the screens asked of the service this frame.
    fn flush(&mut self) {
        for command in self.state.history.outbox.drain(..) {
            self.service.send(command);
        }
    }

    fn qr_order(&self) -> Option<OrderNo> {
        match &self.state.screen {
            Screen::Qr(order_no) => Some(order_no.clone()),
            _ => None,
        }
    }

    /// Applies waiting service events; returns when the screen next needs a repaint by time.
    fn drain(&mut self) -> Option<Duration> {
        let now = Instant::now();
        while let Ok(event) = self.events.try_recv() {
            self.state.apply(event, now);
        }
        // The providers' latest success times, which come with no event of their own.
        self.state.health.extend(self.service.health());
        for amount in self.state.announce.drain(..) {
            self.sound.play_paid(amount);
        }
        // Orders changed on the shown day: one reload per frame however many changed.
        if self.state.history.dirty && self.state.view == View::History {
            self.state.history.refresh();
        }
        let mut wake = self.state.tick(now);
        if let Screen::Qr(_) = self.state.screen
            && let Some(expires_at) = self.state.order.as_ref().and_then(|o| o.expires_at)
        {
            // Wake when the countdown's shown value changes (see `state::countdown`).
            let (shown, next_ms) = state::countdown(expires_at, crate::service::now_ms());
            if shown > 0 {
                let next = Duration::from_millis(u64::try_from(next_ms).unwrap_or(1000));
                wake = Some(wake.map_or(next, |w| w.min(next)));
            }
        }
        wake
    }
}

impl eframe::App for TillApp {
    fn logic(&mut self, ctx: &egui::Context, frame: &mut eframe::Frame) {
        self.first_frame.observe(frame.info());
        if let Some(wait) = self.drain() {
            ctx.request_repaint_after(wait);
        }
        let events = ctx.input(|i| i.events.clone());
        for action in self.keys(ctx, events) {
            self.run(action);
        }
        self.flush();
        self.settings_work();
        if self.theme != Some(self.state.theme) {
            self.theme = Some(self.state.theme);
            ctx.set_theme(match self.state.theme {
                crate::config::Theme::Dark => egui::Theme::Dark,
                crate::config::Theme::Light => egui::Theme::Light,
            });
        }
    }

    fn raw_input_hook(&mut self, _ctx: &egui::Context, raw_input: &mut egui::RawInput) {
        fonts::limit_atlas(raw_input);
    }

    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        if let Some(log) = &mut self.frames {
            let view = match self.state.view {
                View::Till => "till",
                View::History => "history",
                View::Closes => "closes",
                View::Settings => "settings",
            };
            if !log.record(frame.info().cpu_usage, view) {
                self.frames = None;
            }
        }
        let actions = ui::draw(ui, &mut self.state, &mut self.textures);
        for action in actions {
            self.run(action);
        }
        // Keys typed while the customer window had the focus count as the staff's.
        let typed = self
            .customer
            .show(ui.ctx(), &self.state, &mut self.textures);
        if !typed.is_empty() {
            for action in self.keys(ui.ctx(), typed) {
                self.run(action);
            }
            ui.ctx().request_repaint();
        }
        self.flush();
        self.settings_work();
        // An action may have changed the screen: draw it now rather than on the next input.
        if ui.ctx().input(|i| !i.events.is_empty()) {
            ui.ctx().request_repaint();
        }
    }
}
