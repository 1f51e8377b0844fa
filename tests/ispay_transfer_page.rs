//! The ispay.in simulator's hosted pay page (`/ispay/transfer/{order_id}`, the seed's
//! "直接跳转出码页面"): served for an order created through the gateway, with the amount, a
//! decodable QR image inline, the time left and the status polling script; 404 for an
//! unknown order; the merchant's order number escaped; a paid order shown paid.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::SocketAddr;

use base64::Engine as _;
use qrtill::providers::ispay::transformers::SignInput;
use qrtill::sandbox::ispay::{DEMO_KEY, DEMO_USERID};
use qrtill::sandbox::{Sandbox, SandboxOptions};
use qrtill::secret::Secret;

async fn sandbox() -> Sandbox {
    Sandbox::start(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        SandboxOptions::default(),
    )
    .await
    .expect("sandbox")
}

/// Creates an Alipay order through the gateway, signed as the seed says; returns its id.
async fn create(sandbox: &Sandbox, order_no: &str, amount: &str) -> String {
    let return_url = "http://127.0.0.1:9/return";
    let sign = SignInput::Create {
        userid: DEMO_USERID,
        order_no,
        order_type: "P901",
        amount,
        return_url,
    }
    .sign(&Secret::new(DEMO_KEY));
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("userid", DEMO_USERID)
        .append_pair("order_no", order_no)
        .append_pair("order_type", "P901")
        .append_pair("amount", amount)
        .append_pair("notify_url", "http://127.0.0.1:9/notify")
        .append_pair("return_url", return_url)
        .append_pair("ip", "127.0.0.1")
        .append_pair("sign", &sign)
        .finish();
    let text = reqwest::Client::new()
        .post(format!("{}/gateway", sandbox.url_for("ispay")))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("gateway")
        .text()
        .await
        .expect("gateway answer");
    let answer: serde_json::Value = serde_json::from_str(&text).expect("gateway JSON");
    assert_eq!(answer["success"], true, "{answer}");
    answer["order_id"].as_str().expect("order_id").to_string()
}

async fn page(sandbox: &Sandbox, id: &str) -> (u16, String, String) {
    let answer = reqwest::get(format!("{}/transfer/{id}", sandbox.url_for("ispay")))
        .await
        .expect("transfer page");
    let status = answer.status().as_u16();
    let content_type = answer
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (status, content_type, answer.text().await.expect("body"))
}

/// The inline QR image: the bytes of its data URL.
fn qr_png(html: &str) -> Vec<u8> {
    let start = html.find("data:image/png;base64,").expect("inline PNG") + 22;
    let end = start + html[start..].find('"').expect("end of the data URL");
    base64::engine::general_purpose::STANDARD
        .decode(&html[start..end])
        .expect("base64 PNG")
}

#[tokio::test]
async fn served_for_a_created_order_with_amount_qr_countdown_and_polling() {
    let sandbox = sandbox().await;
    let id = create(&sandbox, "T-<b>&1", "12.30").await;
    let (status, content_type, html) = page(&sandbox, &id).await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(
        html.contains("<title>支付宝扫码支付 ¥12.30</title>"),
        "{html}"
    );
    assert!(html.contains("<small>¥</small>12.30"));
    let png = qr_png(&html);
    let image = image::load_from_memory(&png).expect("a PNG image");
    assert!(image.width() >= 100 && image.width() == image.height());
    // The QR is the order's payment link, the one the gateway made.
    assert_eq!(
        png,
        qrtill::qr::to_png(
            &format!("qrtill-demo://ispay/{id}?amount=12.30&type=P901"),
            6
        )
        .unwrap()
    );
    // The time left starts from the order's lifetime (300 s by default) and counts down.
    let left: u64 = html
        .split("Date.now() + ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("the time left");
    assert!((295..=300).contains(&left), "{left}");
    assert!(html.contains("setTimeout(tick, 1000"));
    // The status is asked every 5 s, relative to the page, for this order.
    assert!(html.contains(&format!("fetch(\"../query/{id}\"")));
    assert!(html.contains("setTimeout(poll, 5000)"));
    // The merchant's order number is shown, escaped.
    assert!(html.contains("<dd>T-&lt;b&gt;&amp;1</dd>"), "{html}");
    assert!(!html.contains("T-<b>"));
    // Waiting, not paid yet.
    assert!(html.contains("show(1);") || html.contains("show(5);"));
}

#[tokio::test]
async fn a_paid_order_is_shown_paid() {
    let sandbox = sandbox().await;
    let id = create(&sandbox, "T-paid", "5.00").await;
    let answer = reqwest::Client::new()
        .post(format!("{}/orders/T-paid/pay", sandbox.control_url()))
        .send()
        .await
        .expect("control API");
    assert!(answer.status().is_success());
    let (status, _, html) = page(&sandbox, &id).await;
    assert_eq!(status, 200);
    assert!(html.contains("show(9);"));
}

#[tokio::test]
async fn unknown_order_is_404() {
    let sandbox = sandbox().await;
    create(&sandbox, "T-known", "1.00").await;
    let (status, content_type, html) = page(&sandbox, "424800000000000000").await;
    assert_eq!(status, 404);
    assert!(content_type.starts_with("text/html"));
    assert!(html.contains("订单不存在"));
    assert!(!html.contains("data:image/png"));
}
