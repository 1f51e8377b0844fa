//! V免签: create, query, account and close answers, notifies.
#![no_main]

use qrtill::providers::vmq;
use qrtill::secret::Secret;
use qrtill_fuzz::{SECRET, exercise_provider};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    exercise_provider(
        &vmq::Vmq::new("fuzz", "https://vmq.example", Secret::new(SECRET)),
        data,
    );
});
