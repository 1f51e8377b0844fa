//! qrtill: a desktop QR-payment till for small shops.
//!
//! Staff type an amount and pick a channel; qrtill creates an order with the shop's
//! QR-payment provider, shows the QR, watches the order until it is paid, and keeps every
//! sale in a local SQLite ledger.
//!
//! Dependencies flow one way: `app`/`ui` → `service` (commands and events only) →
//! `providers`, `ledger` → `model`. `providers` are sans-IO; `service` does all I/O;
//! `sandbox` speaks the providers' wire formats on loopback. `app` plays `sound`, which knows
//! only `model`.

pub mod app;
pub mod cli;
pub mod config;
pub mod day;
pub mod export;
pub mod frames;
pub mod ledger;
pub mod model;
pub mod providers;
pub mod qr;
pub mod sandbox;
pub mod secret;
pub mod service;
pub mod settings;
pub mod sound;
pub mod ui;
