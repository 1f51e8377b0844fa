//! jings: create and query answers, notifies.
#![no_main]

use qrtill::providers::jings;
use qrtill::secret::Secret;
use qrtill_fuzz::{SECRET, exercise_provider};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    exercise_provider(
        &jings::Jings::new(
            "fuzz",
            "https://jings.example",
            "10001",
            Secret::new(SECRET),
        ),
        data,
    );
});
