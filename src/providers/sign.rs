//! Signing pieces shared by the providers: MD5 as lowercase hex over a list of fields.
//!
//! Each provider lists the fields of each signed message, in signing order, as data next to
//! its wire structs; this module only concatenates and hashes.

use md5::{Digest as _, Md5};

/// `md5(a + b + c …)`: the fields concatenated with no separator, as 32 lowercase hex digits.
pub fn md5_concat(parts: &[&str]) -> String {
    let mut hasher = Md5::new();
    for part in parts {
        hasher.update(part.as_bytes());
    }
    hex_lower(&hasher.finalize())
}

/// Lowercase hex of a digest.
fn hex_lower(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        // Writing to a String cannot fail.
        let _ = write!(out, "{byte:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1321_vectors() {
        assert_eq!(md5_concat(&[]), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(md5_concat(&["a", "bc"]), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(
            md5_concat(&["message ", "digest"]),
            "f96b697d7cb7938d525a2f31aaf161d0"
        );
    }
}
