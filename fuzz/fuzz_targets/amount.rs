//! The amount parsers: what a cashier types and what a provider sends.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| qrtill_fuzz::exercise_amount(data));
