//! qrtill's igepay requests are accepted by an independent igepay server written from the
//! seed alone (`tests/independent/igepay_server.py`), and a sale ends paid by its notify; a
//! forged notify changes nothing.
//!
//! Each test starts the Python server on a random loopback port with a requests log, points a
//! config at it and runs `qrtill charge --json` as a separate process, then acts as the
//! payer's phone. With `[listener] public_url` the QR is qrtill's bridge page: the test
//! opens it, submits the signed form it holds (form-urlencoded POST) to the server, and
//! checks that the server answered its pay page and logged the request as accepted (right
//! `key`, no unknown field); a notify with a forged `sign` must leave the order unpaid, and
//! the real one (after the server's pay control) must end the sale paid, answered `success`.
//! Without `public_url` the QR is the signed `payFor` link itself, opened with a GET (the
//! server's tolerance), and the notify still reaches the listener at its local address.
//!
//! Skipped (with a message) when `python3` is not on PATH. Every child is killed when its
//! guard drops (also when a test fails), every wait is bounded by the test's budget, and only
//! 127.0.0.1 is ever used.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::net::TcpListener;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use common::independent::{Server, path_of};
use common::{Sale, expect_paid, http, http_with, start_budget, start_charge, status_json};

/// The merchant id and token the independent server is started with.
const UID: &str = "10001";
const TOKEN: &str = "indep-token-456";

/// igepay's create, the payer's form post (or, tolerated, its GET link).
const PAY_PATH: &str = "/Home/Pay/payFor";

/// The provider id in the config.
const PROVIDER: &str = "ige";

/// The independent igepay server, a config pointing qrtill at it with its listener on a
/// known loopback port, and a temporary folder.
struct Setup {
    server: Server,
    /// `http://127.0.0.1:PORT` of qrtill's callback listener.
    listener: String,
    config: PathBuf,
    dir: tempfile::TempDir,
}

/// A loopback port free a moment ago (bound, then closed).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind a free port")
        .local_addr()
        .expect("its address")
        .port()
}

impl Setup {
    /// With `public_url` set (to the listener's own address) or not. `None` (after saying so)
    /// when `python3` is missing.
    fn start(public_url: bool) -> Option<Setup> {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = Server::start(
            "igepay_server.py",
            &["--uid", UID, "--token", TOKEN],
            &dir.path().join("requests.jsonl"),
        )?;
        let listener = format!("http://127.0.0.1:{}", free_port());
        let listen = listener.trim_start_matches("http://");
        let public = if public_url {
            format!("public_url = \"{listener}\"\n")
        } else {
            String::new()
        };
        let text = format!(
            "default_provider = \"{PROVIDER}\"\n\n[listener]\nlisten = \"{listen}\"\n{public}\n\
             [[provider]]\nid = \"{PROVIDER}\"\nkind = \"igepay\"\nbase_url = \"{}\"\n\
             uid = \"{UID}\"\ntoken = \"{TOKEN}\"\n",
            server.url
        );
        let config = dir.path().join("config.toml");
        std::fs::write(&config, text).expect("write config");
        Some(Setup {
            server,
            listener,
            config,
            dir,
        })
    }

    /// Starts `charge --amount 3.50 --channel wechat --json` and reads up to its QR.
    fn sale(&self) -> Sale {
        start_charge(&self.config, self.dir.path(), "3.50", "wechat")
    }

    /// The one `payFor` request the server logged must be the order's create, sent with
    /// `method`, accepted: HTTP 200, the right `key`, no field the protocol lacks.
    fn assert_pay_for_accepted(&self, order_no: &str, method: &str) {
        let requests: Vec<Value> = self
            .server
            .protocol_requests()
            .into_iter()
            .filter(|r| path_of(r) == PAY_PATH)
            .collect();
        assert_eq!(requests.len(), 1, "one payFor request: {requests:?}");
        let r = &requests[0];
        assert_eq!(r["method"], method, "{r}");
        assert_eq!(r["status"], 200, "payFor not answered 200: {r}");
        assert!(r.get("expected_key").is_none(), "wrong key: {r}");
        assert!(
            r.get("unknown_fields").is_none(),
            "fields the protocol lacks: {r}"
        );
        assert_eq!(r["result"]["code"], 1, "payFor refused: {r}");
        assert_eq!(r["result"]["order_id"], order_no, "{r}");

        let order = self.server.order("order_id", order_no);
        assert_eq!(order["price"], "3.50", "{order}");
        assert_eq!(order["type"], "1", "wechat is type 1: {order}");
        assert_eq!(order["via"], method, "{order}");
        assert_eq!(
            order["fields"]["notify_url"],
            format!("{}/notify/{PROVIDER}", self.listener),
            "the notify goes to the listener: {order}"
        );
    }

    /// Pays the order at the server (which sends the real notify at once), ends the sale
    /// paid, and checks that qrtill answered that notify 200 `success`.
    fn pay(&mut self, sale: &mut Sale) {
        self.server
            .control("POST", &format!("/control/pay/{}?wait=1", sale.order_no));
        expect_paid(sale, "3.50", TOKEN);
        let order_no = sale.order_no.clone();
        let notify = self.server.log_line("the real notify for this order", |l| {
            l["event"] == "notify" && l["order_id"] == order_no.as_str() && l["forged"] == false
        });
        assert_eq!(notify["status"], 200, "notify: {notify}");
        assert_eq!(
            notify["response_body"], "success",
            "qrtill must answer the notify `success`: {notify}"
        );
        let status = status_json(&self.config, sale, TOKEN);
        assert_eq!(status["status"], "paid", "{status}");
        assert_eq!(status["paid"], "3.50", "{status}");
    }
}

/// The server's pay page (not its error page) for `order_no`.
fn assert_pay_page(page: &str, order_no: &str) {
    assert!(
        !page.contains("支付请求错误") && !page.contains("id='error'"),
        "the server refused the payFor request:\n{page}"
    );
    assert!(
        page.contains("id='igepay-order'") && page.contains(&format!("data-order-id='{order_no}'")),
        "not the server's pay page for order {order_no}:\n{page}"
    );
}

// ---------------------------------------------------------------------------------------------
// The bridge page's form, as the payer's browser reads it

/// `&amp;`, `&quot;`, `&#39;`, `&lt;` and `&gt;` back to text (`&amp;` last).
fn html_unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The tags named `name` (`<name …>`, without the angle brackets' contents after `>`).
fn tags<'a>(html: &'a str, name: &str) -> Vec<&'a str> {
    let open = format!("<{name} ");
    html.match_indices(&open)
        .map(|(start, _)| {
            let rest = &html[start..];
            &rest[..rest.find('>').map_or(rest.len(), |end| end + 1)]
        })
        .collect()
}

/// The value of a double-quoted attribute of a tag, unescaped.
fn attr(tag: &str, name: &str) -> Option<String> {
    let open = format!(" {name}=\"");
    let start = tag.find(&open)? + open.len();
    let len = tag[start..].find('"')?;
    Some(html_unescape(&tag[start..start + len]))
}

/// The one form of a page: its `action` and its hidden inputs, in order.
fn form_of(page: &str) -> (String, Vec<(String, String)>) {
    let forms = tags(page, "form");
    assert_eq!(forms.len(), 1, "one form on the bridge page:\n{page}");
    let form = forms[0];
    assert_eq!(
        attr(form, "method").map(|m| m.to_ascii_lowercase()),
        Some("post".into()),
        "the form is posted: {form}"
    );
    let action = attr(form, "action").unwrap_or_else(|| panic!("form has no action: {form}"));
    let fields = tags(page, "input")
        .into_iter()
        .filter(|input| attr(input, "type").as_deref() == Some("hidden"))
        .map(|input| {
            let name = attr(input, "name").unwrap_or_else(|| panic!("input has no name: {input}"));
            (name, attr(input, "value").unwrap_or_default())
        })
        .collect();
    (action, fields)
}

// ---------------------------------------------------------------------------------------------
// Tests

#[test]
fn bridge_page_form_is_accepted_and_only_the_real_notify_pays() {
    start_budget();
    let Some(mut setup) = Setup::start(true) else {
        return;
    };
    let mut sale = setup.sale();
    let bridge = format!("{}/pay/{}", setup.listener, sale.order_no);
    assert_eq!(sale.qr["qr"], bridge.as_str(), "the QR is the bridge page");

    // The payer's phone opens the bridge page and submits its form to the provider.
    let (status, page) = http("GET", &bridge);
    assert_eq!(status, 200, "GET {bridge}:\n{page}");
    assert!(!page.contains(TOKEN), "the bridge page shows the token");
    let (action, fields) = form_of(&page);
    assert_eq!(action, format!("{}{PAY_PATH}", setup.server.url), "{page}");
    assert!(
        fields.iter().any(|(name, _)| name == "key"),
        "the form is signed: {fields:?}"
    );
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&fields)
        .finish();
    let (status, answer) = http_with(
        "POST",
        &action,
        Some("application/x-www-form-urlencoded"),
        &body,
    );
    assert_eq!(status, 200, "POST {action}:\n{answer}");
    assert_pay_page(&answer, &sale.order_no);
    setup.assert_pay_for_accepted(&sale.order_no, "POST");

    // A notify with a forged sign: the order stays unpaid.
    setup.server.control(
        "POST",
        &format!("/control/notify/{}?forged=1&wait=1", sale.order_no),
    );
    let order_no = sale.order_no.clone();
    let forged = setup.server.log_line("the forged notify", |l| {
        l["event"] == "notify" && l["order_id"] == order_no.as_str() && l["forged"] == true
    });
    assert!(
        forged["status"].is_number(),
        "the forged notify reached the listener: {forged}"
    );
    assert_ne!(
        forged["response_body"], "success",
        "a forged notify must not be acknowledged: {forged}"
    );
    if let Some(done) = sale.charge.try_event_of("done", Duration::from_secs(1)) {
        panic!("a forged notify ended the sale: {done}\nforged notify: {forged}");
    }
    let status = status_json(&setup.config, &sale, TOKEN);
    assert_ne!(
        status["status"], "paid",
        "a forged notify paid: {status}\n{forged}"
    );
    assert!(status["paid"].is_null(), "a forged notify paid: {status}");

    setup.pay(&mut sale);
}

#[test]
fn signed_link_without_public_url_is_accepted_and_paid_by_notify() {
    start_budget();
    let Some(mut setup) = Setup::start(false) else {
        return;
    };
    let mut sale = setup.sale();
    let link = sale.qr["qr"].as_str().unwrap_or_default().to_string();
    assert!(
        link.starts_with(&format!("{}{PAY_PATH}?", setup.server.url)),
        "without public_url the QR is the signed payFor link: {link}"
    );
    assert!(link.contains("&key="), "the link is signed: {link}");
    assert!(!link.contains(TOKEN), "the link shows the token: {link}");

    // The payer's phone opens the link (the server's GET tolerance).
    let (status, answer) = http("GET", &link);
    assert_eq!(status, 200, "GET {link}:\n{answer}");
    assert_pay_page(&answer, &sale.order_no);
    setup.assert_pay_for_accepted(&sale.order_no, "GET");

    setup.pay(&mut sale);
}
