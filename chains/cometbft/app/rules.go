package main

// The scenarios' rules, pure: one transaction against a read-only view of the state gives
// the writes it makes or a non-zero code. CheckTx and FinalizeBlock both call apply, so a
// transaction the mempool refuses is refused the same way inside a block.
//
// Every transaction is kvstore's `key=value` (one '=', no ':' in the scenarios' own
// encodings, so the built-in kvstore also accepts them and a run against it shows what a
// chain without the rules lets through). Keys outside the reserved prefixes are plain
// kvstore writes. Reserved:
//
//	ev/<doc>=<sha256 hex>,<metadata>           evidence (存证): write-once
//	tr/<product>/<seq>=<event>                 traceability (溯源): seq must be the product's
//	                                           next one; tr/<product> holds the event count
//	inv/<id>=issue,<owner>,<amount>,<nonce>    e-invoice (电子发票): issue once
//	inv/<id>=transfer,<from>,<to>,<nonce>      only the owner, only before redemption
//	inv/<id>=redeem,<owner>,<nonce>            exactly once
//
// An invoice's state (its key's value) is `<status>,<owner>,<amount>,<transfers>,<redemptions>`.

import (
	"regexp"
	"strconv"
	"strings"
)

const (
	CodeOK         uint32 = 0
	CodeBadFormat  uint32 = 1 // kvstore's CodeTypeInvalidTxFormat
	CodeExists     uint32 = 2 // evidence already stored (write-once)
	CodeOutOfOrder uint32 = 3 // traceability event not the product's next one
	CodeNoInvoice  uint32 = 4 // transfer/redeem of an invoice never issued
	CodeRedeemed   uint32 = 5 // invoice already redeemed: the double redemption
	CodeNotOwner   uint32 = 6 // transfer/redeem by someone who does not hold it
	CodeIssued     uint32 = 7 // invoice id already issued
	maxKey                = 256
	maxValue              = 4096
)

var (
	name   = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)
	digest = regexp.MustCompile(`^[0-9a-f]{64}$`)
	meta   = regexp.MustCompile(`^[A-Za-z0-9._/+-]{0,512}$`)
	number = regexp.MustCompile(`^(0|[1-9][0-9]{0,17})$`)
)

// Write is one key set to one value.
type Write struct {
	Key, Value string
}

// Getter reads the state as the transaction sees it.
type Getter func(key string) (string, bool)

// Split a kvstore transaction: `key=value`, or `key:value` (kvstore's second form).
func Split(tx []byte) (string, string, bool) {
	text := string(tx)
	var key, value string
	switch {
	case strings.Count(text, "=") == 1 && !strings.Contains(text, ":"):
		key, value, _ = strings.Cut(text, "=")
	case strings.Count(text, ":") == 1 && !strings.Contains(text, "="):
		key, value, _ = strings.Cut(text, ":")
	default:
		return "", "", false
	}
	if key == "" || value == "" || len(key) > maxKey || len(value) > maxValue {
		return "", "", false
	}
	return key, value, true
}

// Apply judges one transaction: its writes (code 0) or a code and a reason.
func Apply(get Getter, tx []byte) ([]Write, uint32, string) {
	key, value, ok := Split(tx)
	if !ok {
		return nil, CodeBadFormat, "expected key=value (one '=', no ':'), key ≤ 256 and value ≤ 4096 bytes"
	}
	switch {
	case strings.HasPrefix(key, "ev/"):
		return evidence(get, key, value)
	case strings.HasPrefix(key, "tr/"):
		return trace(get, key, value)
	case strings.HasPrefix(key, "inv/"):
		return invoice(get, key, value)
	}
	return []Write{{key, value}}, CodeOK, ""
}

func evidence(get Getter, key, value string) ([]Write, uint32, string) {
	hash, metadata, _ := strings.Cut(value, ",")
	if !name.MatchString(key[3:]) || !digest.MatchString(hash) || !meta.MatchString(metadata) {
		return nil, CodeBadFormat, "evidence: expected ev/<doc>=<sha256 lower-case hex>,<metadata>"
	}
	if _, found := get(key); found {
		return nil, CodeExists, "evidence " + key[3:] + " is already stored (write-once)"
	}
	return []Write{{key, value}}, CodeOK, ""
}

func trace(get Getter, key, value string) ([]Write, uint32, string) {
	product, seq, ok := strings.Cut(key[3:], "/")
	if !ok || !name.MatchString(product) || !number.MatchString(seq) || !meta.MatchString(value) {
		return nil, CodeBadFormat, "traceability: expected tr/<product>/<seq>=<event>"
	}
	count := int64(0)
	if stored, found := get("tr/" + product); found {
		count, _ = strconv.ParseInt(stored, 10, 64)
	}
	want, _ := strconv.ParseInt(seq, 10, 64)
	if want != count {
		return nil, CodeOutOfOrder, "traceability: product " + product + " expects event " +
			strconv.FormatInt(count, 10) + ", got " + seq
	}
	return []Write{{key, value}, {"tr/" + product, strconv.FormatInt(count+1, 10)}}, CodeOK, ""
}

// Invoice is an invoice's stored state.
type Invoice struct {
	Status      string // issued | redeemed
	Owner       string
	Amount      string
	Transfers   int64
	Redemptions int64
}

func (inv Invoice) String() string {
	return strings.Join([]string{inv.Status, inv.Owner, inv.Amount,
		strconv.FormatInt(inv.Transfers, 10), strconv.FormatInt(inv.Redemptions, 10)}, ",")
}

func parseInvoice(text string) (Invoice, bool) {
	parts := strings.Split(text, ",")
	if len(parts) != 5 {
		return Invoice{}, false
	}
	transfers, err1 := strconv.ParseInt(parts[3], 10, 64)
	redemptions, err2 := strconv.ParseInt(parts[4], 10, 64)
	return Invoice{parts[0], parts[1], parts[2], transfers, redemptions}, err1 == nil && err2 == nil
}

func invoice(get Getter, key, value string) ([]Write, uint32, string) {
	id := key[4:]
	parts := strings.Split(value, ",")
	if !name.MatchString(id) || len(parts) < 3 {
		return nil, CodeBadFormat, "invoice: expected inv/<id>=issue|transfer|redeem,..."
	}
	for _, part := range parts[1:] {
		if !name.MatchString(part) {
			return nil, CodeBadFormat, "invoice: fields are names ([A-Za-z0-9._-]{1,128})"
		}
	}
	stored, found := get(key)
	current, valid := parseInvoice(stored)
	if found && !valid {
		return nil, CodeBadFormat, "invoice " + id + " holds no invoice state"
	}
	switch {
	case parts[0] == "issue" && len(parts) == 4:
		if !number.MatchString(parts[2]) {
			return nil, CodeBadFormat, "invoice: the amount is a decimal number"
		}
		if found {
			return nil, CodeIssued, "invoice " + id + " is already issued"
		}
		return []Write{{key, Invoice{"issued", parts[1], parts[2], 0, 0}.String()}}, CodeOK, ""
	case parts[0] == "transfer" && len(parts) == 4:
		if code, log := usable(found, current, id, parts[1]); code != CodeOK {
			return nil, code, log
		}
		current.Owner = parts[2]
		current.Transfers++
		return []Write{{key, current.String()}}, CodeOK, ""
	case parts[0] == "redeem" && len(parts) == 3:
		if code, log := usable(found, current, id, parts[1]); code != CodeOK {
			return nil, code, log
		}
		current.Status = "redeemed"
		current.Redemptions++
		return []Write{{key, current.String()}}, CodeOK, ""
	}
	return nil, CodeBadFormat, "invoice: expected issue,<owner>,<amount>,<nonce> | " +
		"transfer,<from>,<to>,<nonce> | redeem,<owner>,<nonce>"
}

// usable: the invoice exists, is not redeemed, and `who` holds it.
func usable(found bool, current Invoice, id, who string) (uint32, string) {
	if !found {
		return CodeNoInvoice, "invoice " + id + " was never issued"
	}
	if current.Status == "redeemed" {
		return CodeRedeemed, "invoice " + id + " is already redeemed"
	}
	if current.Owner != who {
		return CodeNotOwner, "invoice " + id + " is held by " + current.Owner + ", not " + who
	}
	return CodeOK, ""
}
