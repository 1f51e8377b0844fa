//! yinqiantong: create and query answers, notifies signed in headers.
#![no_main]

use qrtill::providers::yinqiantong;
use qrtill::secret::Secret;
use qrtill_fuzz::{SECRET, exercise_provider};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    exercise_provider(
        &yinqiantong::Yinqiantong::new(
            "fuzz",
            "https://yinqiantong.example",
            "app-1",
            Secret::new("fuzz-appkey-3b8e"),
            Secret::new(SECRET),
        ),
        data,
    );
});
