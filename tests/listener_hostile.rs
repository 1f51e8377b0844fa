//! The callback listener against hostile clients, over real loopback sockets: a body over
//! the limit is refused with 413 and changes nothing; a body that trickles in is answered
//! 408; headers that trickle in, and a connection held open doing nothing, are cut off when
//! the connection's time is up; unknown paths and methods get 404/405 and touch nothing. A
//! genuine notify still pays its order through the same listener.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // Tests fail loudly.

mod listener_rig;

use std::time::{Duration, Instant};

use listener_rig::{PROVIDER, Rig, TOKEN, notify_body};
use qrtill::model::PaymentStatus;
use qrtill::service::listener::{Limits, MAX_BODY};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const LIMITS: Limits = Limits {
    body: Duration::from_secs(1),
    connection: Duration::from_secs(3),
};

async fn rig() -> Rig {
    listener_rig::start(LIMITS).await
}

/// Reads until the server closes the connection (or resets it); returns what was read and
/// how long it took. Fails the test when the server holds the connection past `within`.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> (String, Duration) {
    let started = Instant::now();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at((started + within).into(), stream.read(&mut buf)).await {
            Err(_) => panic!(
                "connection still open after {within:?}; read so far: {}",
                String::from_utf8_lossy(&seen)
            ),
            Ok(Ok(0) | Err(_)) => break,
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
        }
    }
    (
        String::from_utf8_lossy(&seen).into_owned(),
        started.elapsed(),
    )
}

fn status_line(response: &str) -> &str {
    response.lines().next().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_body_is_refused_and_changes_nothing() {
    let rig = rig().await;
    let sales = rig.open_orders(1, |_| 1234).await;
    let (order_no, _) = &sales[0];
    let (_, events_before) = rig.ledger_counts();
    // A genuine notify padded past the limit: refused before anyone reads it.
    let mut body = notify_body(order_no.as_str(), "12.34", TOKEN);
    body.push_str("&pad=");
    body.push_str(&"x".repeat(MAX_BODY));
    let client = reqwest::Client::new();
    let with_length = client
        .post(rig.notify_url())
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body.clone())
        .send()
        .await
        .expect("answer");
    assert_eq!(with_length.status(), 413);
    // The same without a Content-Length (chunked): cut off once the limit is passed.
    let mut stream = TcpStream::connect(rig.addr).await.unwrap();
    let head = format!(
        "POST /notify/{PROVIDER} HTTP/1.1\r\nHost: till\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    for chunk in body.as_bytes().chunks(8 * 1024) {
        let framed = [format!("{:x}\r\n", chunk.len()).as_bytes(), chunk, b"\r\n"].concat();
        if stream.write_all(&framed).await.is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let (response, _) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(status_line(&response).contains("413"), "{response}");
    let row = rig
        .service
        .with_ledger({
            let order_no = order_no.clone();
            move |ledger| ledger.get(&order_no)
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.status, PaymentStatus::Pending);
    assert_eq!(
        rig.ledger_counts().1,
        events_before,
        "no event for a refused body"
    );
    // Just under the limit is still read (and here refused for its signature only).
    let small = client
        .post(rig.notify_url())
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!(
            "order_id={order_no}&price=12.34&code=0000&sign=0&pad={}",
            "x".repeat(MAX_BODY - 200)
        ))
        .send()
        .await
        .expect("answer");
    assert_eq!(small.status(), 200);
    assert_eq!(small.text().await.unwrap(), "fail");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_body_is_answered_408_and_changes_nothing() {
    let rig = rig().await;
    let sales = rig.open_orders(1, |_| 500).await;
    let (order_no, _) = &sales[0];
    let (_, events_before) = rig.ledger_counts();
    let body = notify_body(order_no.as_str(), "5.00", TOKEN);
    let mut stream = TcpStream::connect(rig.addr).await.unwrap();
    let head = format!(
        "POST /notify/{PROVIDER} HTTP/1.1\r\nHost: till\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // Half the body, then one byte a little slower than the limit allows in all.
    let (first, rest) = body.as_bytes().split_at(body.len() / 2);
    stream.write_all(first).await.unwrap();
    let started = Instant::now();
    let trickle = async {
        for byte in rest {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if stream.write_all(&[*byte]).await.is_err() {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_millis(1500), trickle).await;
    let (response, _) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(status_line(&response).contains("408"), "{response}");
    assert!(started.elapsed() < LIMITS.connection + Duration::from_secs(2));
    assert_eq!(
        rig.ledger_counts().1,
        events_before,
        "a cut-off notify changed the ledger"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickled_headers_and_idle_connections_are_cut_off() {
    let rig = rig().await;
    // One header byte every 200 ms: would take minutes to finish.
    let mut slow = TcpStream::connect(rig.addr).await.unwrap();
    slow.write_all(b"POST /notify/till HTTP/1.1\r\nHost: till\r\n")
        .await
        .unwrap();
    let mut idle = TcpStream::connect(rig.addr).await.unwrap();
    let trickle = async {
        let started = Instant::now();
        for byte in b"X-Padding: ".iter().chain([b'a'; 400].iter()).cycle() {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if slow.write_all(&[*byte]).await.is_err() {
                break;
            }
        }
        started.elapsed()
    };
    let limit = LIMITS.connection + Duration::from_secs(3);
    // The trickling client is dropped by the server, so its writes start failing; the idle
    // one sees its connection closed.
    let (trickled, (nothing, held)) = tokio::join!(
        tokio::time::timeout(limit, trickle),
        read_until_closed(&mut idle, limit)
    );
    let trickled = trickled.expect("a client trickling headers was held too long");
    assert!(trickled < limit, "{trickled:?}");
    assert!(nothing.is_empty(), "{nothing}");
    assert!(
        held >= LIMITS.connection - Duration::from_millis(500),
        "cut off too early: {held:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_paths_and_methods_touch_nothing() {
    let rig = rig().await;
    let sales = rig.open_orders(1, |_| 700).await;
    let (order_no, _) = &sales[0];
    let (_, events_before) = rig.ledger_counts();
    let genuine = notify_body(order_no.as_str(), "7.00", TOKEN);
    let client = reqwest::Client::new();
    let base = format!("http://{}", rig.addr);
    for path in [
        "/".to_string(),
        "/notify".into(),
        "/notify/".into(),
        "/notify/another-provider".into(),
        format!("/notify/{PROVIDER}/extra"),
        "/admin".into(),
        "/pay/NO-SUCH-ORDER".into(),
    ] {
        for post in [false, true] {
            let request = if post {
                client.post(format!("{base}{path}")).body(genuine.clone())
            } else {
                client.get(format!("{base}{path}?{genuine}"))
            };
            let answer = request
                .header("Content-Type", "application/x-www-form-urlencoded")
                .send()
                .await
                .unwrap();
            // The bridge page is GET only: a POST to it is refused as a method, not a path.
            let expected = if post && path.starts_with("/pay/") {
                405
            } else {
                404
            };
            assert_eq!(
                answer.status(),
                expected,
                "{} {path}",
                if post { "POST" } else { "GET" }
            );
        }
        assert_eq!(
            rig.ledger_counts().1,
            events_before,
            "{path} changed the ledger"
        );
    }
    for method in ["PUT", "DELETE", "PATCH"] {
        let answer = client
            .request(method.parse().unwrap(), rig.notify_url())
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(genuine.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 405, "{method}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_genuine_notify_still_pays_through_the_limits() {
    let rig = rig().await;
    let sales = rig.open_orders(1, |_| 1999).await;
    let (order_no, _) = &sales[0];
    let answer = reqwest::Client::new()
        .post(rig.notify_url())
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(notify_body(order_no.as_str(), "19.99", TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.text().await.unwrap(), "success");
    let (paid, _) = rig.ledger_counts();
    assert_eq!(paid.get(order_no.as_str()), Some(&1));
}
