//! gatepay.io, both create APIs: create and query answers, notifies.
#![no_main]

use qrtill::providers::gatepay;
use qrtill::secret::Secret;
use qrtill_fuzz::{SECRET, exercise_provider};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    for variant in [gatepay::Variant::AnyPay, gatepay::Variant::Cloud] {
        let account = gatepay::Gatepay::new(
            "fuzz",
            "https://gatepay.example",
            variant,
            "appkey-1",
            Secret::new(SECRET),
        )
        .with_custom("till");
        exercise_provider(&account, data);
    }
});
