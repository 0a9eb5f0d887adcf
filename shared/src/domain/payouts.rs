//! Payout accounts (issue #12, `settlement.md` §5.4): where a seller is paid, one account per
//! channel — the receiver the provider's settlement product (WeChat Pay 分账, Alipay 分账) splits
//! the seller's share to.
//!
//! - `PUT /v1/me/payout-accounts/wechat`: `{}` (or no body) → the member's own openid (their
//!   login's, under the mini-program appid that is also the payment appid) with their verified
//!   legal name (`domain::verification`: a person's; WeChat checks it against the openid's real
//!   name), a `PERSONAL_OPENID` receiver; or `{merchant_id, merchant_name}` → a `MERCHANT_ID`
//!   receiver (a business seller; WeChat checks the name).
//! - `PUT /v1/me/payout-accounts/alipay`: `{account, name}` — a `2088…` user id (`userId`) or a
//!   phone number / e-mail login name (`loginName`, whose name Alipay requires).
//! - `GET /v1/me/payout-accounts`: both channels' accounts, masked. `DELETE …/{channel}`.
//!
//! **Binding rules.** Every payout account is a verified member's (real-name verification,
//! `domain::verification`; else 409 `verification_required`): the seller's share leaves
//! Renji's hands, and only to someone Renji verified.
//! - Own WeChat account: a person's verification (its name is the one sent).
//! - Alipay: `name` must be the verified name — a person's legal name, or the company's
//!   registered name for a member verified as an enterprise (an enterprise's Alipay account is
//!   held in that name) — compared after trimming, exactly; otherwise 422
//!   `payout_name_mismatch`, field `name`. Alipay checks the name against the account at
//!   relation bind (for a login name; for a user id when given, `settlement.md` §3), so the
//!   account is then the member's own.
//! - WeChat Pay merchant: a verified member (a person or an enterprise); `merchant_name` is
//!   checked for its form only. Renji does not require it to relate to the member: WeChat Pay
//!   checks the name against the merchant number at `receivers/add` (a mismatch is its refusal,
//!   422 `payout_account_refused`), and Renji holds no record linking a person to a business (a
//!   个体工商户's registered name is not its owner's; an enterprise may be paid through its own
//!   merchant under a name its verification did not use). The merchant is then one whose
//!   number and registered name the verified member knows, held by one member only.
//! - Names (`name`, `merchant_name`) are [`HolderName`]s: only the characters a legal or
//!   registered name holds ([`name_char`]), 422 naming the field otherwise.
//!
//! All of these are checked before anything changes: a refused bind claims, registers and stores
//! nothing.
//!
//! **Order of effects.** The receiver is registered at the provider (`add_receiver` / relation
//! bind, idempotent there) *before* it is stored, so a stored account is always one the
//! provider knows; a provider's refusal of the member's data is 422 `payout_account_refused`
//! with its reason, nothing stored; a provider that cannot be reached is 503, nothing stored.
//! Re-binding replaces the stored account (a write conditioned on the version read), then
//! removes the old receiver at the provider (when it is another one). Unbinding removes the
//! receiver at the provider first, then the record. A removal the provider refuses is logged
//! and the record goes anyway: a receiver only receives what Renji splits to it.
//!
//! **Rules elsewhere.** A seller without any payout account cannot publish a service (a priced
//! listing; 422 `payout_account_required`, field `status`: [`require_any`]), and a buyer may pay
//! only through a channel whose provider the seller has an account at (422
//! `channel_unavailable`, field `channel`: [`require_channel`]). Listings already published stay
//! published when the seller removes their last account: they cannot be paid for (the channel
//! rule) until an account is bound again.
//!
//! **Stored** at `USER#<id> / PAYOUT#<channel>` ([`keys::payout_account`]): the receiver's
//! kind, its account and name sealed (`pii.rs`, bound to the member and the field) beside their
//! masked forms, so lists and the export need no key. The account deletion removes the
//! receivers at the providers and the records ([`remove_all`]).

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::audit::{self, Actor, AuditRecord, Target};
use super::members::{self, now_rfc3339, VerifiedAs};
use super::profile::bounded_text_between;
use super::verification;
use crate::app::App;
use crate::error::Error;
use crate::ids::UserId;
use crate::payments::{GatewayError, Provider};
use crate::pii::{KeyRing, Sealed};
use crate::settlement::{Receiver, ReceiverKind, Settlement};
use crate::store::{keys, Condition, DynStore, Query, Record, Records, SortKey, StoreError, Write};

/// The label of a payout account's version condition.
const VERSION_LABEL: &str = "payout_version";
/// The label of the member's check (exists, no deletion begun).
const ACTIVE_LABEL: &str = "member_active";
/// The label of the condition that the account is no other member's.
const CLAIM_LABEL: &str = "payout_claim";

/// Which member holds a receiver (`keys::payout_claim`): a receiver is one at the provider, so
/// one member's. Written with the account, deleted with it.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct PayoutClaim {
    member_id: UserId,
}

impl Record for PayoutClaim {
    const KIND: &'static str = "payout claim";
}

/// The claim key of `receiver`: a keyed hash of its kind and account (never the account), under
/// the identity-claim key so a rotation of the active PII key does not lose it.
fn claim_key(app: &App, ring: &KeyRing, receiver: &Receiver) -> Result<crate::store::Key, Error> {
    let kid = app
        .config
        .id_claim_key
        .as_deref()
        .unwrap_or_else(|| ring.active_kid());
    let value = format!("{}\n{}", receiver.kind.as_str(), receiver.account);
    let tag = ring
        .tag(kid, "payout-claim", &value)
        .map_err(|e| Error::Config(format!("RENJI_ID_CLAIM_KEY: {e}")))?;
    Ok(keys::payout_claim(&tag))
}

/// Who holds `receiver`, if anyone.
async fn holder(store: &DynStore, claim: &crate::store::Key) -> Result<Option<UserId>, Error> {
    Ok(store
        .get_record::<PayoutClaim>(claim)
        .await?
        .map(|c| c.member_id))
}

fn taken(field: &'static str) -> Error {
    Error::Unprocessable {
        code: "payout_account_taken",
        field,
        message: "this account is another member's payout account".into(),
    }
}

/// The channel of a path (`{channel}`): `wechat` or `alipay`; another names nothing (404).
pub fn channel_param(text: &str) -> Option<Provider> {
    Provider::ALL.into_iter().find(|p| p.as_str() == text)
}

/// A merchant number (WeChat Pay `mchid`): 8 to 12 digits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MerchantId(String);

impl MerchantId {
    pub fn parse(text: &str) -> Result<Self, Error> {
        let text = text.trim();
        // A number, not a digit string: no leading zero (two spellings of one merchant).
        if (8..=12).contains(&text.len())
            && text.bytes().all(|b| b.is_ascii_digit())
            && !text.starts_with('0')
        {
            Ok(MerchantId(text.to_owned()))
        } else {
            Err(Error::invalid(
                "merchant_id",
                "must be a merchant number of 8 to 12 digits, not starting with 0",
            ))
        }
    }
}

/// A payout account's holder name: a person's legal name or a business's registered name, as the
/// provider knows it — trimmed, 2 to 100 characters, each one a legal or company name can hold
/// ([`name_char`]): no emoji, symbols, control or zero-width characters, at most one space in a
/// row, and at least one letter (a Chinese character or a Latin letter).
#[derive(Clone, PartialEq, Eq)]
pub struct HolderName(String);

impl HolderName {
    pub const MIN_CHARS: usize = 2;
    pub const MAX_CHARS: usize = 100;

    pub fn parse(field: &str, text: &str) -> Result<Self, Error> {
        let name = bounded_text_between(field, text, Self::MIN_CHARS, Self::MAX_CHARS)?;
        // Named by code point, never echoed: a name is personal data.
        if let Some(c) = name.chars().find(|&c| !name_char(c)) {
            return Err(Error::invalid(
                field,
                format!(
                    "may hold only Chinese characters, Latin letters, digits, single spaces \
                     between words and · ( ) （ ） - & . (U+{:04X} is not one of them)",
                    u32::from(c)
                ),
            ));
        }
        if name.contains("  ") {
            return Err(Error::invalid(field, "must not hold two spaces in a row"));
        }
        if !name.chars().any(|c| cjk(c) || latin_letter(c)) {
            return Err(Error::invalid(
                field,
                "must hold a Chinese character or a Latin letter",
            ));
        }
        Ok(HolderName(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The characters of a legal or registered name, as the ID card, the business licence and the
/// providers' account records write them: Chinese characters (the CJK ideograph blocks with
/// their extensions, so rare characters of real names pass, and 〇), Latin letters with or
/// without diacritics (precomposed: a passport name, pinyin with ü), ASCII digits (company
/// names), the space, the middle dot `·` (U+00B7) of transliterated names (李·买买提), parentheses
/// half and full width (某某（北京）科技有限公司), `-`, `&` and `.` (Co.). Nothing else: no emoji,
/// symbols, full-width letters or digits, look-alike dots (・ •), control, format or zero-width
/// characters: no registered name holds them, and the provider compares the name exactly, so
/// such a name could only fail there (or, invisible, hide what it says).
pub fn name_char(c: char) -> bool {
    cjk(c)
        || latin_letter(c)
        || c.is_ascii_digit()
        || matches!(c, ' ' | '·' | '(' | ')' | '（' | '）' | '-' | '&' | '.')
}

/// A CJK unified or compatibility ideograph (Unicode 15.1 blocks), or 〇 (U+3007).
fn cjk(c: char) -> bool {
    matches!(
        c,
        '\u{3007}'
            | '\u{3400}'..='\u{4DBF}' // extension A
            | '\u{4E00}'..='\u{9FFF}' // unified ideographs
            | '\u{F900}'..='\u{FAFF}' // compatibility ideographs
            | '\u{20000}'..='\u{2A6DF}' // extension B
            | '\u{2A700}'..='\u{2EE5F}' // extensions C to F, I
            | '\u{2F800}'..='\u{2FA1F}' // compatibility supplement
            | '\u{30000}'..='\u{323AF}' // extensions G, H
    )
}

/// A Latin letter: ASCII, Latin-1 (without × ÷) and Latin Extended-A/B, precomposed.
fn latin_letter(c: char) -> bool {
    c.is_ascii_alphabetic()
        || matches!(c, '\u{00C0}'..='\u{024F}') && !matches!(c, '\u{00D7}' | '\u{00F7}')
}

impl std::fmt::Debug for HolderName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HolderName(..)")
    }
}

/// An Alipay account: a user id (`2088` and 12 more digits) or a login name (a mainland mobile
/// number, or an e-mail address).
#[derive(Clone, PartialEq, Eq)]
pub struct AlipayAccount {
    kind: ReceiverKind,
    account: String,
}

impl AlipayAccount {
    pub fn parse(text: &str) -> Result<Self, Error> {
        let text = text.trim();
        let digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
        let kind = if digits && text.len() == 16 && text.starts_with("2088") {
            ReceiverKind::AlipayUserId
        } else if (digits && text.len() == 11 && is_mobile(text)) || is_email(text) {
            ReceiverKind::AlipayLoginName
        } else {
            return Err(Error::invalid(
                "account",
                "must be an Alipay user id (2088 and 12 more digits), a mobile number or an \
                 e-mail address",
            ));
        };
        Ok(AlipayAccount {
            kind,
            account: match kind {
                ReceiverKind::AlipayLoginName => text.to_ascii_lowercase(),
                _ => text.to_owned(),
            },
        })
    }

    pub fn kind(&self) -> ReceiverKind {
        self.kind
    }
}

/// A mainland mobile number's prefix: `1` and a second digit from 3 to 9.
fn is_mobile(digits: &str) -> bool {
    matches!(digits.as_bytes(), [b'1', b'3'..=b'9', ..])
}

impl std::fmt::Debug for AlipayAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AlipayAccount({:?}, ..)", self.kind)
    }
}

fn is_email(text: &str) -> bool {
    let Some((local, domain)) = text.split_once('@') else {
        return false;
    };
    text.len() <= 100
        && !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._%+-@".contains(c))
        && !domain.contains('@')
}

/// `PUT /v1/me/payout-accounts/wechat` body.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WechatBody {
    #[serde(default)]
    pub merchant_id: Option<String>,
    #[serde(default)]
    pub merchant_name: Option<String>,
}

/// `PUT /v1/me/payout-accounts/alipay` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlipayBody {
    pub account: String,
    pub name: String,
}

/// A validated request for an account.
#[derive(Debug)]
pub enum Wanted {
    /// The member's own openid with their verified name.
    WechatOwn,
    WechatMerchant {
        id: MerchantId,
        name: HolderName,
    },
    Alipay {
        account: AlipayAccount,
        name: HolderName,
    },
}

impl WechatBody {
    pub fn validate(self) -> Result<Wanted, Error> {
        match (self.merchant_id, self.merchant_name) {
            (None, None) => Ok(Wanted::WechatOwn),
            (Some(id), Some(name)) => Ok(Wanted::WechatMerchant {
                id: MerchantId::parse(&id)?,
                name: HolderName::parse("merchant_name", &name)?,
            }),
            (Some(_), None) => Err(Error::invalid(
                "merchant_name",
                "a merchant account needs the merchant's full registered name",
            )),
            (None, Some(_)) => Err(Error::invalid(
                "merchant_id",
                "a merchant account needs the merchant number",
            )),
        }
    }
}

impl AlipayBody {
    pub fn validate(self) -> Result<Wanted, Error> {
        Ok(Wanted::Alipay {
            account: AlipayAccount::parse(&self.account)?,
            name: HolderName::parse("name", &self.name)?,
        })
    }
}

/// A payout account as stored: no plaintext account or name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutAccount {
    pub channel: Provider,
    pub kind: ReceiverKind,
    pub account_masked: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_masked: Option<String>,
    pub account_sealed: Sealed,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_sealed: Option<Sealed>,
    pub bound_at: String,
    pub version: i64,
}

impl Record for PayoutAccount {
    const KIND: &'static str = "payout account";
}

fn account_field(channel: Provider) -> String {
    format!("payout.{}.account", channel.as_str())
}

fn name_field(channel: Provider) -> String {
    format!("payout.{}.name", channel.as_str())
}

/// The API's word for a receiver kind.
fn kind_word(kind: ReceiverKind) -> &'static str {
    match kind {
        ReceiverKind::WechatOpenid => "wechat_personal",
        ReceiverKind::WechatMerchant => "wechat_merchant",
        ReceiverKind::AlipayUserId => "alipay_user_id",
        ReceiverKind::AlipayLoginName => "alipay_login_name",
        ReceiverKind::AlipayOpenId => "alipay_open_id",
    }
}

impl PayoutAccount {
    /// The member's view (and the export's): masked, never the sealed values.
    pub fn view(&self) -> Value {
        json!({
            "channel": self.channel,
            "type": kind_word(self.kind),
            "account": self.account_masked,
            "name": self.name_masked,
            "bound_at": self.bound_at,
        })
    }

    /// The receiver, opened.
    pub fn receiver(&self, ring: &KeyRing, member: &UserId) -> Result<Receiver, Error> {
        let unreadable = |e| Error::Internal(format!("payout account unreadable: {e}"));
        let account = ring
            .open(member, &account_field(self.channel), &self.account_sealed)
            .map_err(unreadable)?;
        let name = self
            .name_sealed
            .as_ref()
            .map(|n| ring.open(member, &name_field(self.channel), n))
            .transpose()
            .map_err(unreadable)?;
        Ok(Receiver {
            kind: self.kind,
            account,
            name,
        })
    }
}

/// A person's name with only its last character shown (`张三` → `*三`).
pub fn mask_name(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let hidden = chars.len().saturating_sub(1);
    let mut masked = "*".repeat(hidden);
    masked.extend(&chars[hidden..]);
    masked
}

/// An account with its middle hidden: an e-mail address shows its first character and its
/// domain, a mobile number its first 3 and last 4 digits, anything else its first and last 4
/// characters (`2088********5726`; an openid is never shown in full), a short one its last 2.
pub fn mask_account(account: &str) -> String {
    if let Some((local, domain)) = account.split_once('@') {
        let first: String = local.chars().take(1).collect();
        return format!("{first}***@{domain}");
    }
    let chars: Vec<char> = account.chars().collect();
    let n = chars.len();
    let (head, tail) = match n {
        11 if account.starts_with('1') && account.bytes().all(|b| b.is_ascii_digit()) => (3, 4),
        n if n > 8 => (4, 4),
        n if n > 2 => (0, 2),
        _ => (0, 0),
    };
    let mut masked: String = chars[..head].iter().collect();
    masked.push_str(&"*".repeat(n - head - tail));
    masked.extend(&chars[n - tail..]);
    masked
}

/// A provider's answer to registering the member's receiver: its refusal is the member's to
/// fix (422 naming `field`, with the provider's reason); unavailability is 503.
fn registration_error(provider: Provider, field: &'static str, e: GatewayError) -> Error {
    match e {
        GatewayError::Refused { code, message } => Error::Unprocessable {
            code: "payout_account_refused",
            field,
            message: format!(
                "{} did not accept this account: {code} {message}",
                provider.as_str()
            ),
        },
        unavailable => unavailable.into(),
    }
}

/// An Alipay account's holder name must be the member's verified name (both trimmed, compared
/// exactly): the seller's share goes to the person (or enterprise) Renji verified, not to an
/// account someone else holds. 422 `payout_name_mismatch`, field `name`; the verified name is
/// not echoed (the member sees it masked in `GET /v1/me/verification`).
fn require_own_name(name: &HolderName, verified: &str) -> Result<(), Error> {
    if name.as_str() == verified.trim() {
        return Ok(());
    }
    Err(Error::Unprocessable {
        code: "payout_name_mismatch",
        field: "name",
        message: "name must be the name of your real-name verification, as on your ID card \
                  (or your enterprise's registered name)"
            .into(),
    })
}

fn verification_required(message: &str) -> Error {
    Error::Conflict {
        code: "verification_required",
        message: message.into(),
    }
}

async fn stored(
    store: &DynStore,
    member: &UserId,
    provider: Provider,
) -> Result<Option<PayoutAccount>, Error> {
    store
        .get_record(&keys::payout_account(member, provider.as_str()))
        .await
}

/// `PUT /v1/me/payout-accounts/{channel}`: registers the receiver at the provider, then stores
/// it (replacing the channel's account, whose receiver is then removed at the provider).
pub async fn bind(
    app: &App,
    member_id: &UserId,
    provider: Provider,
    wanted: Wanted,
) -> Result<PayoutAccount, Error> {
    let ring = app.pii().await?;
    let settlement = app.payments.settlement(provider)?;
    let member = members::get(&app.store, member_id)
        .await?
        .filter(|m| m.deleting.is_none() && !m.openid.is_empty())
        .ok_or(Error::Unauthorized("member no longer exists"))?;
    // Every payout account is a verified member's, checked before anything is claimed,
    // registered or stored.
    let verified = verification::verified_name(app, member_id).await?;
    let (receiver, field) = match wanted {
        Wanted::WechatOwn => match verified {
            Some((VerifiedAs::Person, name)) => (
                Receiver {
                    kind: ReceiverKind::WechatOpenid,
                    account: member.openid.clone(),
                    name: Some(name),
                },
                "channel",
            ),
            Some((VerifiedAs::Enterprise, _)) => {
                return Err(verification_required(
                    "an enterprise is paid through its WeChat Pay merchant number: send \
                     merchant_id and merchant_name",
                ))
            }
            None => {
                return Err(verification_required(
                    "your own WeChat account can be paid once your real name is verified \
                     (POST /v1/me/verification)",
                ))
            }
        },
        Wanted::WechatMerchant { id, name } => {
            if verified.is_none() {
                return Err(verification_required(
                    "a WeChat Pay merchant can be bound once your real name or your enterprise \
                     is verified (POST /v1/me/verification)",
                ));
            }
            (
                Receiver {
                    kind: ReceiverKind::WechatMerchant,
                    account: id.0,
                    name: Some(name.0),
                },
                "merchant_id",
            )
        }
        Wanted::Alipay { account, name } => {
            let Some((_, legal)) = verified else {
                return Err(verification_required(
                    "an Alipay account can be bound once your real name is verified \
                     (POST /v1/me/verification)",
                ));
            };
            require_own_name(&name, &legal)?;
            (
                Receiver {
                    kind: account.kind,
                    account: account.account,
                    name: Some(name.0),
                },
                "account",
            )
        }
    };
    if receiver.kind.provider() != provider {
        return Err(Error::Internal("a receiver of another provider".into()));
    }
    let old = stored(&app.store, member_id, provider).await?;
    let old_receiver = old
        .as_ref()
        .map(|o| o.receiver(&ring, member_id))
        .transpose()?;
    // One member per receiver: another's unbind would remove it at the provider for both.
    let claim = claim_key(app, &ring, &receiver)?;
    let held_by = holder(&app.store, &claim).await?;
    if held_by.as_ref().is_some_and(|m| m != member_id) {
        return Err(taken(field));
    }
    settlement
        .add_receiver(&receiver)
        .await
        .map_err(|e| registration_error(provider, field, e))?;
    let masked_name = receiver.name.as_deref().map(|n| match receiver.kind {
        // A business's registered name is public registry data: shown in full.
        ReceiverKind::WechatMerchant => n.to_owned(),
        _ => mask_name(n),
    });
    let record = PayoutAccount {
        channel: provider,
        kind: receiver.kind,
        account_masked: mask_account(&receiver.account),
        name_masked: masked_name,
        account_sealed: ring.seal(member_id, &account_field(provider), &receiver.account)?,
        name_sealed: receiver
            .name
            .as_deref()
            .map(|n| ring.seal(member_id, &name_field(provider), n))
            .transpose()?,
        bound_at: now_rfc3339(),
        version: old.as_ref().map_or(1, |o| o.version + 1),
    };
    let condition = match &old {
        None => Condition::Absent,
        Some(o) => Condition::Equals("version".into(), json!(o.version)),
    };
    let key = keys::payout_account(member_id, provider.as_str());
    let claim_item = PayoutClaim {
        member_id: member_id.clone(),
    }
    .to_item(claim.clone(), None)?;
    let claim_condition = match held_by {
        None => Condition::Absent,
        Some(_) => Condition::Equals("member_id".into(), json!(member_id)),
    };
    let mut writes = vec![
        Write::put_if(record.to_item(key, None)?, condition, VERSION_LABEL),
        Write::check(keys::member(member_id), members::active(), ACTIVE_LABEL),
        Write::put_if(claim_item, claim_condition, CLAIM_LABEL),
    ];
    if let Some(old) = &old_receiver {
        let old_claim = claim_key(app, &ring, old)?;
        if old_claim != claim {
            writes.push(Write::delete(old_claim));
        }
    }
    writes.extend(audited(app, member_id, "payout.bind")?);
    match app.store.transact(writes).await {
        Ok(()) => {}
        Err(StoreError::ConditionFailed {
            label: VERSION_LABEL,
        }) => {
            // Another bind or unbind of this channel got in first: the receiver just added is
            // removed again unless a member holds it (then it is theirs, or this member's
            // account as the winner stored it).
            if holder(&app.store, &claim).await?.is_none() {
                forget(settlement, &receiver).await;
            }
            return Err(Error::Conflict {
                code: "payout_account_changed",
                message: "this payout account changed at the same time; look at it and retry"
                    .into(),
            });
        }
        Err(StoreError::ConditionFailed {
            label: ACTIVE_LABEL,
        }) => {
            if holder(&app.store, &claim).await?.is_none() {
                forget(settlement, &receiver).await;
            }
            return Err(Error::Unauthorized("member no longer exists"));
        }
        // Another member bound it at the same moment: theirs.
        Err(StoreError::ConditionFailed { label: CLAIM_LABEL }) => return Err(taken(field)),
        Err(e) => return Err(e.into()),
    }
    tracing::info!(user_id = %member_id, channel = provider.as_str(), kind = receiver.kind.as_str(), "payout account bound");
    if let Some(old) = old_receiver {
        if (old.kind, &old.account) != (receiver.kind, &receiver.account) {
            forget(settlement, &old).await;
        }
    }
    Ok(record)
}

/// The member's `payout.bind` / `payout.unbind` audit record (ids and codes only, as every
/// member's record: never the account or the name), written in the change's transaction.
fn audited(app: &App, member: &UserId, action: &str) -> Result<Vec<Write>, Error> {
    let record = AuditRecord::by(
        Actor::Member(member.clone()),
        OffsetDateTime::now_utc(),
        action,
        Target::member(member),
        None,
        "ok",
    );
    audit::writes(&record, app.config.audit_keep)
}

/// Removes a receiver at the provider, best effort (logged when it fails).
async fn forget(settlement: &dyn Settlement, receiver: &Receiver) {
    if let Err(e) = settlement.delete_receiver(receiver).await {
        tracing::warn!(kind = receiver.kind.as_str(), error = %e, "receiver not removed at the provider");
    }
}

/// `GET /v1/me/payout-accounts`: the member's accounts, masked (`{"items": […]}`, by channel
/// name: alipay, wechat).
pub async fn list(store: &DynStore, member: &UserId) -> Result<Value, Error> {
    let items: Vec<Value> = accounts(store, member)
        .await?
        .iter()
        .map(PayoutAccount::view)
        .collect();
    Ok(json!({ "items": items }))
}

/// The member's payout accounts as stored, by channel name.
pub async fn accounts(store: &DynStore, member: &UserId) -> Result<Vec<PayoutAccount>, Error> {
    let page = store
        .query(
            Query::partition(keys::user(member))
                .sort(SortKey::Prefix(keys::PAYOUT_PREFIX.into()))
                .limit(Provider::ALL.len() + 1),
        )
        .await?;
    page.items
        .into_iter()
        .map(PayoutAccount::from_item)
        .collect::<Result<Vec<_>, _>>()
}

/// `DELETE /v1/me/payout-accounts/{channel}`: the receiver removed at the provider, then the
/// record. 404 when there is none.
pub async fn unbind(app: &App, member: &UserId, provider: Provider) -> Result<(), Error> {
    let record = stored(&app.store, member, provider)
        .await?
        .ok_or(Error::NotFound("payout account"))?;
    let ring = app.pii().await?;
    let receiver = record.receiver(&ring, member)?;
    let settlement = app.payments.settlement(provider)?;
    remove_at_provider(settlement, &receiver).await?;
    let mut writes = vec![
        Write::delete_if(
            keys::payout_account(member, provider.as_str()),
            Condition::Equals("version".into(), json!(record.version)),
            VERSION_LABEL,
        ),
        Write::delete(claim_key(app, &ring, &receiver)?),
    ];
    writes.extend(audited(app, member, "payout.unbind")?);
    match app.store.transact(writes).await {
        Ok(()) => {
            tracing::info!(user_id = %member, channel = provider.as_str(), "payout account removed");
            Ok(())
        }
        Err(StoreError::ConditionFailed { .. }) => Err(Error::Conflict {
            code: "payout_account_changed",
            message: "this payout account changed at the same time; look at it and retry".into(),
        }),
        Err(e) => Err(e.into()),
    }
}

/// Removes a receiver at the provider: unavailability is an error (nothing else changes; try
/// again), a refusal is logged and passes (the record goes anyway).
async fn remove_at_provider(settlement: &dyn Settlement, receiver: &Receiver) -> Result<(), Error> {
    match settlement.delete_receiver(receiver).await {
        Ok(()) => Ok(()),
        Err(GatewayError::Refused { code, message }) => {
            tracing::warn!(
                kind = receiver.kind.as_str(),
                code,
                message,
                "the provider refused to remove a receiver"
            );
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// The account deletion (`domain::deletion`): each receiver of the member removed at its
/// provider, then its record. An unreachable provider fails the step (the job resumes it).
pub async fn remove_all(app: &App, member: &UserId) -> Result<usize, Error> {
    let records = accounts(&app.store, member).await?;
    if records.is_empty() {
        return Ok(0);
    }
    let ring = app.pii().await?;
    for record in &records {
        let receiver = record.receiver(&ring, member)?;
        let settlement = app.payments.settlement(record.channel)?;
        remove_at_provider(settlement, &receiver).await?;
        app.store
            .transact(vec![
                Write::delete(keys::payout_account(member, record.channel.as_str())),
                Write::delete(claim_key(app, &ring, &receiver)?),
            ])
            .await?;
    }
    Ok(records.len())
}

/// When the member's account at `provider` was last bound (registered at the provider), if
/// they have one: a failed split is tried again once the account was bound after it.
pub async fn bound_at(
    store: &DynStore,
    member: &UserId,
    provider: Provider,
) -> Result<Option<String>, Error> {
    Ok(stored(store, member, provider).await?.map(|a| a.bound_at))
}

/// The seller's receiver at `provider`, opened (account and name), for the split
/// (`domain::settlement`); `None` when the seller has no account there.
pub async fn account_for(
    app: &App,
    seller: &UserId,
    provider: Provider,
) -> Result<Option<Receiver>, Error> {
    let Some(record) = stored(&app.store, seller, provider).await? else {
        return Ok(None);
    };
    let ring = app.pii().await?;
    record.receiver(&ring, seller).map(Some)
}

/// The providers the seller has a payout account at.
pub async fn channels(store: &DynStore, seller: &UserId) -> Result<Vec<Provider>, Error> {
    Ok(accounts(store, seller)
        .await?
        .into_iter()
        .map(|a| a.channel)
        .collect())
}

/// Publishing a priced listing: the seller must have a payout account (422
/// `payout_account_required`, field `status`).
pub async fn require_any(store: &DynStore, seller: &UserId) -> Result<(), Error> {
    if channels(store, seller).await?.is_empty() {
        return Err(Error::Unprocessable {
            code: "payout_account_required",
            field: "status",
            message: "a priced listing can be published once you have a payout account \
                      (PUT /v1/me/payout-accounts/{channel}); save it as a draft meanwhile"
                .into(),
        });
    }
    Ok(())
}

/// Paying through `provider`: the seller must be payable there (422 `channel_unavailable`,
/// field `channel`, naming the channels that are).
pub async fn require_channel(
    store: &DynStore,
    seller: &UserId,
    provider: Provider,
) -> Result<(), Error> {
    let channels = channels(store, seller).await?;
    if channels.contains(&provider) {
        return Ok(());
    }
    let offered: Vec<&str> = channels
        .iter()
        .flat_map(|p| match p {
            Provider::Wechat => vec!["wechat"],
            Provider::Alipay => vec!["alipay", "alipay_wap"],
        })
        .collect();
    Err(Error::Unprocessable {
        code: "channel_unavailable",
        field: "channel",
        message: match offered.is_empty() {
            true => "the seller cannot be paid at the moment".into(),
            false => format!(
                "the seller cannot be paid through {}; pay with {}",
                provider.as_str(),
                offered.join(" or ")
            ),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_and_names_are_masked() {
        assert_eq!(mask_account("2088101126765726"), "2088********5726");
        assert_eq!(mask_account("13800138000"), "138****8000");
        assert_eq!(mask_account("Zhang.San@example.com"), "Z***@example.com");
        let openid = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o";
        assert_eq!(mask_account(openid), format!("oUpF{}eS6o", "*".repeat(20)));
        assert_eq!(mask_account("12345678"), "******78");
        assert_eq!(mask_account("ab"), "**");
        assert_eq!(mask_name("张三"), "*三");
        assert_eq!(mask_name("欧阳娜娜"), "***娜");
    }

    #[test]
    fn merchant_ids_are_numbers() {
        assert!(MerchantId::parse("1900000109").is_ok());
        for bad in [
            "0190000010",
            "00000000",
            "1234567",
            "1234567890123",
            "19000a0109",
        ] {
            assert!(MerchantId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn alipay_accounts_are_user_ids_or_login_names() {
        let kind = |t: &str| AlipayAccount::parse(t).map(|a| a.kind());
        assert_eq!(
            kind("2088101126765726").unwrap(),
            ReceiverKind::AlipayUserId
        );
        assert_eq!(kind("13800138000").unwrap(), ReceiverKind::AlipayLoginName);
        assert_eq!(
            kind(" a.b@example.com ").unwrap(),
            ReceiverKind::AlipayLoginName
        );
        for bad in [
            "",
            "2088",
            "20881011267657261",
            "23800138000",
            "10000000000",
            "12800138000",
            "a@b",
            "x@.com",
            "张三@例子.中国",
            "a@b@c.com",
        ] {
            let e = AlipayAccount::parse(bad).unwrap_err();
            assert!(
                matches!(&e, Error::Invalid { field, .. } if field == "account"),
                "{bad}: {e:?}"
            );
        }
    }

    #[test]
    fn holder_names_hold_only_what_a_legal_or_company_name_holds() {
        for good in [
            "张三",
            " 欧阳娜娜 ",
            "买买提·艾力",
            "𠮷野家", // extension B (a rare character of a real name)
            "某某（北京）科技有限公司",
            "某某(北京)科技有限公司",
            "58同城信息技术有限公司",
            "Zoë Müller-Lüdenscheidt",
            "Lǚ Xiǎomíng",
            "A&B Trading Co. Ltd.",
            "别家公司 sandbox-mismatch",
        ] {
            let name = HolderName::parse("name", good).unwrap_or_else(|e| panic!("{good}: {e}"));
            assert_eq!(name.as_str(), good.trim());
        }
        for (bad, why) in [
            ("张三😀", "U+1F600"),
            ("张\u{200B}三", "invisible"), // zero-width space: the shared printable check
            ("张\u{0007}三", "control"),
            ("张三\u{FE0F}", "U+FE0F"),
            ("李・四", "U+30FB"), // katakana middle dot, not ·
            ("李•四", "U+2022"),
            ("ＡＢ公司", "U+FF21"), // full-width letters
            ("张三,李四", "U+002C"),
            ("O'Neil", "U+0027"),
            ("e\u{0301}e", "U+0301"), // decomposed: a combining accent
            ("张  三", "two spaces"),
            ("张\t三", "control"),
            ("12345", "a Chinese character or a Latin letter"),
            ("·-·", "a Chinese character or a Latin letter"),
            ("张", "at least 2"),
        ] {
            let e = HolderName::parse("merchant_name", bad).unwrap_err();
            assert!(
                matches!(&e, Error::Invalid { field, .. } if field == "merchant_name"),
                "{bad:?}: {e:?}"
            );
            assert!(e.message().contains(why), "{bad:?}: {}", e.message());
        }
    }

    #[test]
    fn an_alipay_name_is_the_verified_name() {
        let name = |t: &str| HolderName::parse("name", t).unwrap();
        assert!(require_own_name(&name(" 张三 "), "张三").is_ok());
        assert!(require_own_name(
            &name("某某（北京）科技有限公司"),
            "某某（北京）科技有限公司"
        )
        .is_ok());
        for (sent, verified) in [("李四", "张三"), ("张三丰", "张三"), ("Zhang San", "张三")]
        {
            let e = require_own_name(&name(sent), verified).unwrap_err();
            assert_eq!(
                (e.code(), e.status().as_u16()),
                ("payout_name_mismatch", 422)
            );
            assert!(
                matches!(&e, Error::Unprocessable { field: "name", .. }),
                "{e:?}"
            );
            assert!(!e.message().contains(verified), "echoed: {}", e.message());
        }
    }

    #[test]
    fn bodies_name_the_bad_field() {
        let field = |e: Error| match e {
            Error::Invalid { field, .. } => field,
            other => panic!("{other:?}"),
        };
        let wechat = |id: Option<&str>, name: Option<&str>| {
            WechatBody {
                merchant_id: id.map(str::to_owned),
                merchant_name: name.map(str::to_owned),
            }
            .validate()
        };
        assert!(matches!(wechat(None, None).unwrap(), Wanted::WechatOwn));
        assert!(matches!(
            wechat(Some("1230000109"), Some("某某科技有限公司")).unwrap(),
            Wanted::WechatMerchant { .. }
        ));
        assert_eq!(
            field(wechat(Some("12a"), Some("某某科技有限公司")).unwrap_err()),
            "merchant_id"
        );
        assert_eq!(
            field(wechat(Some("1230000109"), Some(" ")).unwrap_err()),
            "merchant_name"
        );
        assert_eq!(
            field(wechat(Some("1230000109"), None).unwrap_err()),
            "merchant_name"
        );
        assert_eq!(
            field(wechat(None, Some("某某")).unwrap_err()),
            "merchant_id"
        );
        let alipay = |a: &str, n: &str| {
            AlipayBody {
                account: a.into(),
                name: n.into(),
            }
            .validate()
        };
        assert_eq!(field(alipay("2088101126765726", "张").unwrap_err()), "name");
        assert_eq!(
            field(alipay("2088101126765726", "张三🙂").unwrap_err()),
            "name"
        );
        assert_eq!(
            field(wechat(Some("1230000109"), Some("某某科技\u{202E}有限公司")).unwrap_err()),
            "merchant_name"
        );
        assert_eq!(field(alipay("nope", "张三").unwrap_err()), "account");
        assert_eq!(channel_param("wechat"), Some(Provider::Wechat));
        assert_eq!(channel_param("alipay_wap"), None);
    }
}
