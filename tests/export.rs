//! Scope: the CSV export round trip. The file starts with the UTF-8 BOM, has the bilingual
//! header, one row per order, order numbers (ours and the provider's) kept as text through
//! `="…"` so Excel and WPS never turn them into 2.02611E+21, amounts exact as `12.34`,
//! Chinese intact, free text that looks like a formula defused; and a date range or a close
//! exported from the ledger holds exactly its orders.
//!
//! The reader here is what a spreadsheet does: it strips the BOM, splits the CSV, and reads
//! `="…"` as the text inside.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // Tests fail loudly.

use chrono::{FixedOffset, TimeZone as _};
use qrtill::export::{self, BOM, HEADERS};
use qrtill::ledger::{Ledger, NewOrder, OrderRow, Update};
use qrtill::model::{Channel, Fen, OrderNo, PaymentStatus, ProviderState};

fn china() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).unwrap()
}

fn at(h: u32, m: u32, s: u32) -> i64 {
    china()
        .with_ymd_and_hms(2026, 11, 21, h, m, s)
        .single()
        .unwrap()
        .timestamp_millis()
}

/// What a spreadsheet shows for a cell: `="…"` is the text inside.
fn shown(cell: &str) -> String {
    match cell
        .strip_prefix("=\"")
        .and_then(|rest| rest.strip_suffix('"'))
    {
        Some(inner) => inner.replace("\"\"", "\""),
        None => cell.to_string(),
    }
}

/// Reads an export back: the header and the rows as shown.
fn read_back(bytes: &[u8]) -> (Vec<String>, Vec<Vec<String>>) {
    assert!(bytes.starts_with(BOM), "the file must start with EF BB BF");
    let text = std::str::from_utf8(&bytes[BOM.len()..]).expect("UTF-8");
    assert!(text.contains("\r\n"), "CRLF line ends");
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes());
    let mut records = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect::<Vec<_>>());
    let header = records.next().expect("a header");
    let rows = records
        .map(|r| r.iter().map(|c| shown(c)).collect())
        .collect();
    (header, rows)
}

fn row(no: &str, status: PaymentStatus) -> OrderRow {
    OrderRow {
        order_no: OrderNo::new(no).unwrap(),
        provider_id: "main".into(),
        provider_kind: "ispay".into(),
        channel: Channel::Wechat,
        amount: Fen(1234),
        payable: None,
        paid: None,
        status,
        provider_order_id: None,
        subject: String::new(),
        operator: "A01".into(),
        demo: false,
        created_at: at(9, 5, 7),
        expires_at: Some(at(9, 10, 7)),
        paid_at: None,
        late_paid: false,
        amount_mismatch: false,
        message: None,
    }
}

#[test]
fn the_csv_round_trips() {
    let mut paid = row("2026112112345600001234", PaymentStatus::Paid);
    paid.payable = Some(Fen(1235));
    paid.paid = Some(Fen(1235));
    paid.paid_at = Some(at(9, 6, 0));
    paid.provider_order_id = Some("4200001234567890123456789".into());
    paid.operator = "收银员王".into();
    paid.subject = "奶茶, 两杯 \"大杯\"\n加冰".into();
    paid.channel = Channel::Alipay;

    let mut flagged = row("0000123", PaymentStatus::Paid);
    flagged.amount = Fen(10_000_000);
    flagged.paid = Some(Fen(9_999_999));
    flagged.paid_at = Some(at(23, 59, 59));
    flagged.late_paid = true;
    flagged.amount_mismatch = true;
    flagged.provider_order_id = Some("ab\"c".into());
    flagged.operator = "=HYPERLINK(\"http://x\")".into();
    flagged.subject = "-1+1".into();

    let pending = row("DEMO2026112100000001", PaymentStatus::Pending);
    let mut small = row("7", PaymentStatus::Expired);
    small.amount = Fen(1);
    small.channel = Channel::Unionpay;

    let orders = vec![paid, flagged, pending, small];
    let mut bytes = Vec::new();
    export::write_orders(&mut bytes, &orders, &china(), "test.csv").unwrap();
    let (header, rows) = read_back(&bytes);
    assert_eq!(header, HEADERS.map(String::from).to_vec());
    assert_eq!(header[0], "创建时间(created)");
    assert_eq!(rows.len(), 4);

    assert_eq!(
        rows[0],
        vec![
            "2026-11-21 09:05:07",
            "2026112112345600001234",
            "支付宝",
            "main",
            "12.34",
            "12.35",
            "12.35",
            "已支付",
            "收银员王",
            "",
            "4200001234567890123456789",
            "2026-11-21 09:06:00",
            "奶茶, 两杯 \"大杯\"\n加冰",
        ]
    );
    assert_eq!(
        rows[1],
        vec![
            "2026-11-21 09:05:07",
            "0000123",
            "微信支付",
            "main",
            "100000.00",
            "100000.00",
            "99999.99",
            "已支付",
            "'=HYPERLINK(\"http://x\")",
            "迟付(late) 金额不符(mismatch)",
            "ab\"c",
            "2026-11-21 23:59:59",
            "'-1+1",
        ]
    );
    assert_eq!(rows[2][1], "DEMO2026112100000001");
    assert_eq!(rows[2][6], "", "nothing paid");
    assert_eq!(rows[2][7], "待支付");
    assert_eq!(rows[2][11], "", "no payment time");
    assert_eq!(rows[3][4], "0.01");
    assert_eq!(rows[3][2], "云闪付");
    assert_eq!(rows[3][7], "已过期");

    // In the raw file the order numbers are text formulas, not bare digits.
    let raw = String::from_utf8(bytes[BOM.len()..].to_vec()).unwrap();
    assert!(
        raw.contains("\"=\"\"2026112112345600001234\"\"\""),
        "order no must be a text formula: {raw}"
    );
    assert!(raw.contains("\"=\"\"4200001234567890123456789\"\"\""));
    assert!(!raw.contains(",2026112112345600001234,"));
    // Every amount reads back exactly.
    for (order, cells) in orders.iter().zip(&rows) {
        assert_eq!(Fen::parse_wire(&cells[4]).unwrap(), order.amount);
        assert_eq!(
            Fen::parse_wire(&cells[5]).unwrap(),
            order.payable_or_amount()
        );
        if let Some(paid) = order.paid {
            assert_eq!(Fen::parse_wire(&cells[6]).unwrap(), paid);
        }
    }
}

#[test]
fn an_export_file_of_a_day_and_of_a_close() {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(&dir.path().join("ledger.sqlite3")).unwrap();
    let mut nos = Vec::new();
    for (i, created_at) in [at(9, 0, 0), at(10, 0, 0), at(11, 0, 0)]
        .into_iter()
        .enumerate()
    {
        let no = OrderNo::new(&format!("2026112100000{i}")).unwrap();
        ledger
            .insert_order(&NewOrder {
                order_no: no.clone(),
                provider_id: "main".into(),
                provider_kind: "ispay".into(),
                channel: Channel::Qq,
                amount: Fen(100 * (i64::try_from(i).unwrap() + 1)),
                subject: "测试".into(),
                operator: "A01".into(),
                demo: false,
                created_at,
                expires_at: created_at + 300_000,
            })
            .unwrap();
        ledger
            .apply(
                &no,
                &Update::new("query", ProviderState::Paid, "t", created_at + 1),
            )
            .unwrap();
        nos.push(no);
    }
    let close = ledger.record_close("A01", at(10, 30, 0)).unwrap();
    let orders = ledger.close_orders(close.number).unwrap();
    let path = dir.path().join("close-1.csv");
    assert_eq!(export::export_file(&path, &orders).unwrap(), 2);
    let (_, rows) = read_back(&std::fs::read(&path).unwrap());
    let exported: Vec<&str> = rows.iter().map(|r| r[1].as_str()).collect();
    assert_eq!(exported, vec![nos[0].as_str(), nos[1].as_str()]);
    assert!(rows.iter().all(|r| r[2] == "QQ钱包" && r[12] == "测试"));
    assert!(
        !dir.path().join("close-1.csv.part").exists(),
        "no partial file is left"
    );

    // A folder that does not exist is refused, naming the file.
    let bad = dir.path().join("no-such-folder").join("x.csv");
    let err = export::export_file(&bad, &orders).unwrap_err().to_string();
    assert!(err.contains("x.csv"), "{err}");
}
