//! Shamir's secret sharing over GF(2^8), as sops splits a data key over key groups:
//! one polynomial per secret byte, evaluated at x = 1..=parts, each share the y values
//! followed by its one-byte x (sops's `shamir` package, from Vault). The field is the
//! AES one (x^8 + x^4 + x^3 + x + 1).

use zeroize::Zeroizing;

/// Why a split or a combination cannot be done. Carries no secret.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ShamirError {
    #[error("the threshold must be between 2 and the number of parts (at most 255)")]
    Threshold,
    #[error("an empty secret cannot be split")]
    Empty,
    #[error("at least two shares are needed")]
    TooFew,
    #[error("the shares differ in length or are too short")]
    Lengths,
    #[error("two shares are the same share")]
    Duplicate,
}

/// Multiplication in GF(2^8), without branches or tables that depend on the values.
fn mult(a: u8, b: u8) -> u8 {
    let mut acc: u8 = 0;
    for i in (0..8).rev() {
        let bit = (b >> i) & 1;
        let a_or_zero = 0u8.wrapping_sub(bit) & a;
        let reduce = 0u8.wrapping_sub(acc >> 7) & 0x1B;
        acc = a_or_zero ^ (reduce ^ acc.wrapping_add(acc));
    }
    acc
}

/// The inverse (a^254, by Fermat); 0 for 0.
fn inverse(a: u8) -> u8 {
    let mut b = mult(a, a); // a^2
    let mut c = mult(a, b); // a^3
    b = mult(c, c); // a^6
    b = mult(b, b); // a^12
    c = mult(b, c); // a^15
    b = mult(b, b); // a^24
    b = mult(b, b); // a^48
    b = mult(b, c); // a^63
    b = mult(b, b); // a^126
    b = mult(a, b); // a^127
    mult(b, b)
}

fn div(a: u8, b: u8) -> u8 {
    mult(a, inverse(b))
}

/// Split `secret` into `parts` shares, any `threshold` of which give it back.
pub fn split(
    secret: &[u8],
    parts: usize,
    threshold: usize,
) -> Result<Vec<Zeroizing<Vec<u8>>>, ShamirError> {
    if threshold < 2 || threshold > parts || parts > 255 {
        return Err(ShamirError::Threshold);
    }
    if secret.is_empty() {
        return Err(ShamirError::Empty);
    }
    let mut shares: Vec<Zeroizing<Vec<u8>>> = (0..parts)
        .map(|i| {
            let mut s = Zeroizing::new(vec![0u8; secret.len() + 1]);
            s[secret.len()] = i as u8 + 1;
            s
        })
        .collect();
    let mut coefficients = Zeroizing::new(vec![0u8; threshold]);
    for (idx, &byte) in secret.iter().enumerate() {
        coefficients[0] = byte;
        fill_random(&mut coefficients[1..]);
        for share in shares.iter_mut() {
            let x = share[secret.len()];
            // Horner's method, highest coefficient first.
            share[idx] = coefficients
                .iter()
                .rev()
                .fold(0u8, |acc, &c| mult(acc, x) ^ c);
        }
    }
    Ok(shares)
}

/// The secret the shares were split from (given at least the threshold of them).
pub fn combine(shares: &[&[u8]]) -> Result<Zeroizing<Vec<u8>>, ShamirError> {
    if shares.len() < 2 {
        return Err(ShamirError::TooFew);
    }
    let len = shares[0].len();
    if len < 2 || shares.iter().any(|s| s.len() != len) {
        return Err(ShamirError::Lengths);
    }
    let xs: Vec<u8> = shares.iter().map(|s| s[len - 1]).collect();
    if (1..xs.len()).any(|i| xs[..i].contains(&xs[i])) {
        return Err(ShamirError::Duplicate);
    }
    let mut secret = Zeroizing::new(vec![0u8; len - 1]);
    for (idx, out) in secret.iter_mut().enumerate() {
        // Lagrange interpolation at x = 0.
        let mut value = 0u8;
        for (i, share) in shares.iter().enumerate() {
            let mut basis = 1u8;
            for (j, &xj) in xs.iter().enumerate() {
                if i != j {
                    basis = mult(basis, div(xj, xs[i] ^ xj));
                }
            }
            value ^= mult(share[idx], basis);
        }
        *out = value;
    }
    Ok(secret)
}

fn fill_random(buf: &mut [u8]) {
    use aes_gcm::aead::rand_core::RngCore;
    aes_gcm::aead::OsRng.fill_bytes(buf);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_arithmetic_matches_sops() {
        // The vectors of sops's shamir_test.go.
        assert_eq!(mult(3, 7), 9);
        assert_eq!(mult(3, 0), 0);
        assert_eq!(mult(0, 3), 0);
        assert_eq!(div(0, 7), 0);
        assert_eq!(div(3, 3), 1);
        assert_eq!(div(6, 3), 2);
        for a in 0..=255u8 {
            for b in 1..=255u8 {
                assert_eq!(div(mult(a, b), b), a, "({a} * {b}) / {b}");
            }
        }
    }

    #[test]
    fn a_known_polynomial_is_interpolated() {
        // 42 + 5x: at x = 1 it is 42 ^ 5, at x = 2 it is 42 ^ mult(5, 2).
        let s1 = [42 ^ 5, 1];
        let s2 = [42 ^ mult(5, 2), 2];
        assert_eq!(&*combine(&[&s1, &s2]).unwrap(), &[42]);
    }

    #[test]
    fn any_threshold_of_the_shares_give_the_secret_back() {
        let secret = b"a 32-byte data key, give or take";
        let shares = split(secret, 5, 3).unwrap();
        assert!(shares.iter().all(|s| s.len() == secret.len() + 1));
        for i in 0..5 {
            for j in 0..5 {
                for k in 0..5 {
                    if i == j || j == k || i == k {
                        continue;
                    }
                    let got = combine(&[&shares[i], &shares[j], &shares[k]]).unwrap();
                    assert_eq!(&*got, secret);
                }
            }
        }
        // Fewer than the threshold give something else.
        assert_ne!(&*combine(&[&shares[0], &shares[1]]).unwrap(), secret);
    }

    #[test]
    fn bad_requests_are_refused() {
        assert_eq!(split(b"k", 2, 3).unwrap_err(), ShamirError::Threshold);
        assert_eq!(split(b"k", 3, 1).unwrap_err(), ShamirError::Threshold);
        assert_eq!(split(b"k", 256, 2).unwrap_err(), ShamirError::Threshold);
        assert_eq!(split(b"", 3, 2).unwrap_err(), ShamirError::Empty);
        assert_eq!(combine(&[&[1, 1]]).unwrap_err(), ShamirError::TooFew);
        assert_eq!(combine(&[&[1, 1], &[1]]).unwrap_err(), ShamirError::Lengths);
        assert_eq!(
            combine(&[&[1, 1], &[2, 1]]).unwrap_err(),
            ShamirError::Duplicate
        );
    }
}
