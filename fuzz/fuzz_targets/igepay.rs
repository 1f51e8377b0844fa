//! igepay: create and query answers, notifies.
#![no_main]

use qrtill::providers::igepay;
use qrtill::secret::Secret;
use qrtill_fuzz::{SECRET, exercise_provider};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    exercise_provider(
        &igepay::Igepay::new(
            "fuzz",
            "https://igepay.example",
            "10001",
            Secret::new(SECRET),
        ),
        data,
    );
});
