//! The house plan's dependency direction, checked by scanning source text: providers and the
//! ledger stay pure of I/O and UI, the service never imports egui, and nothing but the
//! service, the sandbox and the entry points reaches for the network.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // Tests fail loudly.

use std::path::Path;

fn sources(dir: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut stack = vec![root];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).expect("read dir") {
                stack.push(entry.expect("entry").path());
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).expect("read source");
            out.push((path.display().to_string(), text));
        }
    }
    assert!(!out.is_empty(), "no sources under {dir}");
    out
}

fn assert_free_of(dir: &str, forbidden: &[&str]) {
    for (file, text) in sources(dir) {
        for line in text.lines().map(str::trim).filter(|l| !l.starts_with("//")) {
            for word in forbidden {
                assert!(!line.contains(word), "{file} must not use `{word}`: {line}");
            }
        }
    }
}

#[test]
fn providers_are_sans_io() {
    assert_free_of(
        "src/providers",
        &[
            "crate::service",
            "crate::ledger",
            "crate::app",
            "crate::ui",
            "crate::sandbox",
            "egui",
            "tokio",
            "reqwest",
            "rusqlite",
            "TcpStream",
            "TcpListener",
            "UdpSocket",
            "std::fs",
            "SystemTime",
            "Utc::now",
            "Local::now",
            "fastrand",
        ],
    );
}

#[test]
fn the_ledger_knows_only_the_model() {
    assert_free_of(
        "src/ledger",
        &[
            "crate::service",
            "crate::providers",
            "crate::app",
            "crate::ui",
            "egui",
            "tokio",
            "reqwest",
        ],
    );
}

#[test]
fn the_service_does_not_draw() {
    assert_free_of(
        "src/service",
        &["egui", "eframe", "crate::app", "crate::ui"],
    );
}

#[test]
fn the_ui_does_no_io() {
    for dir in ["src/ui", "src/app"] {
        assert_free_of(
            dir,
            &[
                "reqwest",
                "rusqlite",
                "crate::providers::",
                "crate::ledger::Ledger",
                "tokio::",
                "std::fs",
                "TcpStream",
                "TcpListener",
            ],
        );
    }
}

#[test]
fn the_sound_knows_only_the_model() {
    assert_free_of(
        "src/sound",
        &[
            "crate::service",
            "crate::ledger",
            "crate::providers",
            "crate::app",
            "crate::ui",
            "egui",
            "tokio",
            "std::fs",
            "std::thread",
        ],
    );
}
