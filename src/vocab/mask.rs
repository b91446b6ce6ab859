//! Masking for records, responses and logs: enough of an address to recognise it, never the
//! whole of it.

/// Mask a phone number for a record or a response: `+1 4255550101` -> `+1 *******101`.
pub fn mask_phone(number: &str) -> String {
    let digits: Vec<usize> = number
        .char_indices()
        .filter(|(_, c)| c.is_ascii_digit())
        .map(|(i, _)| i)
        .collect();
    let keep_from = digits.len().saturating_sub(3);
    let country_end = number.find(' ').unwrap_or(0);
    number
        .char_indices()
        .map(|(i, c)| {
            let pos = digits.iter().position(|d| *d == i);
            match pos {
                Some(p) if p < keep_from && i > country_end => '*',
                _ => c,
            }
        })
        .collect()
}

/// Mask an email address: `adele.vance@personal.example` -> `a***e@personal.example`.
pub fn mask_email(address: &str) -> String {
    match address.split_once('@') {
        Some((local, domain)) if local.chars().count() > 2 => {
            let first = local.chars().next().unwrap_or('*');
            let last = local.chars().last().unwrap_or('*');
            format!("{first}***{last}@{domain}")
        }
        Some((_, domain)) => format!("***@{domain}"),
        None => "***".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_and_emails_are_masked() {
        assert_eq!(mask_phone("+1 4255550101"), "+1 *******101");
        assert_eq!(mask_phone("+14255550101"), "+********101");
        assert_eq!(mask_email("adele.vance@personal.example"), "a***e@personal.example");
        assert_eq!(mask_email("ab@x.test"), "***@x.test");
    }
}
