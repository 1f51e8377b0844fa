//! ispay.in: create and query answers, notifies.
#![no_main]

use qrtill::providers::ispay;
use qrtill::secret::Secret;
use qrtill_fuzz::{SECRET, exercise_provider};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    exercise_provider(
        &ispay::Ispay::new("fuzz", "https://pay.ispay.in", "10001", Secret::new(SECRET)),
        data,
    );
});
