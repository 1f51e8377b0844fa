//! epay (彩虹易支付): create, query and account answers, notifies.
#![no_main]

use qrtill::providers::epay;
use qrtill::secret::Secret;
use qrtill_fuzz::{SECRET, exercise_provider};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    exercise_provider(
        &epay::Epay::new("fuzz", "https://epay.example", "1001", Secret::new(SECRET)),
        data,
    );
});
