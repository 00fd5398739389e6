#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ducha_fuzz::headers(data);
});
