//! Unsubscribe tokens: who and which category, signed with the server key (`SECRET_KEY`, the
//! same key as the anti-forgery tokens, under another purpose), so the link in a message works
//! without a session and stops only that category for that person.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::kinds::Category;
use crate::web::csrf::CsrfKey;

const PURPOSE: &[u8] = b"billing-portal unsubscribe v1\0";
/// Bytes of the MAC kept in a token (128 bits).
const TAG_LEN: usize = 16;
/// The longest token we read (a user id, a category name and a tag, encoded).
pub const MAX_LEN: usize = 120;

fn message(user: Uuid, category: Category) -> Vec<u8> {
    let mut m = user.as_bytes().to_vec();
    m.extend_from_slice(category.as_str().as_bytes());
    m
}

/// The token for `user` and `category`.
pub fn issue(key: &CsrfKey, user: Uuid, category: Category) -> String {
    let mut bytes = message(user, category);
    bytes.extend_from_slice(&key.sign(PURPOSE, &message(user, category))[..TAG_LEN]);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Who and what a genuine token is for; `None` for anything else.
pub fn verify(key: &CsrfKey, token: &str) -> Option<(Uuid, Category)> {
    if token.len() > MAX_LEN {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(token.trim()).ok()?;
    if bytes.len() < 16 + TAG_LEN + 1 {
        return None;
    }
    let (body, tag) = bytes.split_at(bytes.len() - TAG_LEN);
    let (id, name) = body.split_at(16);
    let user = Uuid::from_slice(id).ok()?;
    let category = Category::parse(std::str::from_utf8(name).ok()?)?;
    let expected = key.sign(PURPOSE, &message(user, category));
    bool::from(expected[..TAG_LEN].ct_eq(tag)).then_some((user, category))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_names_its_user_and_category_and_refuses_any_change() {
        let key = CsrfKey::new(&[7u8; 64]).expect("key");
        let user = Uuid::new_v4();
        let token = issue(&key, user, Category::Usage);
        assert_eq!(verify(&key, &token), Some((user, Category::Usage)));
        let other = CsrfKey::new(&[8u8; 64]).expect("key");
        assert_eq!(verify(&other, &token), None);
        // Another category with the same tag is refused.
        let mut bytes = URL_SAFE_NO_PAD.decode(&token).expect("b64");
        bytes[16] = b'x';
        assert_eq!(verify(&key, &URL_SAFE_NO_PAD.encode(bytes)), None);
        assert_eq!(verify(&key, "not a token"), None);
        assert_eq!(verify(&key, ""), None);
    }
}
