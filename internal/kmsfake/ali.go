package kmsfake

import (
	"crypto/hmac"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Ali is a fake Alibaba Cloud KMS (API version 2016-01-20, shared gateway
// kms.<region>.aliyuncs.com) speaking the protocol of
// github.com/alibabacloud-go/kms-20160120/v3 on darabonba-openapi/v2: RPC
// style operations sent as POST / with the parameters in the query string
// (a form body is accepted too), the operation and version in the
// x-acs-action and x-acs-version headers, and the request signed with
// Alibaba Cloud signature method V3 (ACS3-HMAC-SHA256 in the Authorization
// header; x-acs-date, x-acs-signature-nonce, x-acs-content-sha256; STS
// tokens in x-acs-security-token). It serves GenerateDataKey and Decrypt.
//
// Answers are JSON. Success bodies carry the fields of the API reference
// (GenerateDataKey: CiphertextBlob, KeyId, KeyVersionId, Plaintext,
// RequestId; Decrypt: KeyId, KeyVersionId, Plaintext, RequestId). Errors
// carry {HttpStatus, RequestId, HostId, Code, Message, Recommend} with these
// codes:
//
//	IncompleteSignature (400), SignatureDoesNotMatch (400),
//	InvalidAccessKeyId.NotFound (404), InvalidTimeStamp.Expired (400),
//	SignatureNonceUsed (400), InvalidSecurityToken.Expired (400),
//	InvalidSecurityToken.MismatchWithAccessKey (400)   authentication
//	InvalidVersion (400), InvalidAction.NotFound (404) unknown API
//	MissingParameter (400), InvalidParameter (400)     bad parameters
//	Forbidden.KeyNotFound (404), Forbidden.AliasNotFound (404)
//	Forbidden.NoPermission (403)                       DenyAccess set
//	Rejected.Disabled (409), Rejected.PendingDeletion (409)
//	InvalidParameter (400)                             Decrypt of a tampered blob
//	                                                   or with a wrong EncryptionContext
//	Throttling (400)                                   Throttled outage
//	ServiceUnavailableTemporary (503)                  Unavailable outage
//
// The key and parameter codes are those of Alibaba's KMS API reference and
// common error codes; the reference names no specific code for a ciphertext
// that does not authenticate, so the fake answers InvalidParameter there.
//
// A CiphertextBlob is base64 of: key version id (36 bytes) || nonce ||
// AES-256-GCM ciphertext and tag, under the key's master secret with the
// version id and the encryption context as additional data.
type Ali struct {
	*server
	region string
	creds  Credentials
	nonces map[string]time.Time // signature nonces seen; guarded by kmu
}

// AliAPIVersion is the KMS API version the fake serves.
const AliAPIVersion = "2016-01-20"

// NewAli starts a fake Alibaba Cloud KMS for region cn-hangzhou, accepting
// the AccessKey returned by Credentials.
func NewAli(t testing.TB) *Ali {
	t.Helper()
	f := &Ali{region: "cn-hangzhou", nonces: map[string]time.Time{}}
	f.server = newServer(t, aliOp, f.handle, f.resolveLocked)
	f.creds = f.newCredentials("LTAI", false)
	return f
}

// Endpoint is the SDK's Endpoint setting (host:port, plain HTTP).
func (f *Ali) Endpoint() string { return f.Addr() }

// URL is the endpoint as an http:// URL.
func (f *Ali) URL() string { return "http://" + f.Addr() }

// RegionID is the fake's region.
func (f *Ali) RegionID() string { return f.region }

// Credentials are the fake's long-term AccessKey.
func (f *Ali) Credentials() Credentials { return f.creds }

// NewCredentials creates another AccessKey; with sts it is an STS token
// (AccessKey id "STS.…" with a SecurityToken), as Function Compute hands a
// function's role. ExpireCredentials makes it expire.
func (f *Ali) NewCredentials(sts bool) Credentials {
	if sts {
		return f.newCredentials("STS.", true)
	}
	return f.newCredentials("LTAI", false)
}

// CreateKey creates an enabled symmetric key and returns its id. A non-empty
// alias ("alias/name" or "name") is bound to it.
func (f *Ali) CreateKey(alias string) (keyID string) {
	k := &masterKey{id: uuid(), version: uuid(), secret: randomBytes(32)}
	f.addKey(k, alias)
	return k.id
}

func aliOp(r *http.Request) string {
	if a := r.Header.Get("x-acs-action"); a != "" {
		return a
	}
	return r.URL.Query().Get("Action")
}

func (f *Ali) handle(w http.ResponseWriter, r *http.Request, outage Outage) {
	action := aliOp(r)
	reqID := strings.ToUpper(uuid())
	fail := func(e *apiError) { f.writeError(w, r, reqID, e) }
	switch outage {
	case Unavailable:
		fail(&apiError{503, "ServiceUnavailableTemporary", "Service Unavailable Temporary."})
		return
	case Throttled:
		fail(&apiError{400, "Throttling", "Request was denied due to request throttling."})
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return
	}
	if e := f.authenticate(r, body); e != nil {
		fail(e)
		return
	}
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		fail(&apiError{405, "UnsupportedHTTPMethod", "This http method is not supported."})
		return
	}
	params := r.URL.Query()
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "application/x-www-form-urlencoded" {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			fail(&apiError{400, "InvalidParameter", "The request body is not a valid form."})
			return
		}
		for k, v := range form {
			params[k] = append(params[k], v...)
		}
	}
	version := r.Header.Get("x-acs-version")
	if version == "" {
		version = params.Get("Version")
	}
	if version != AliAPIVersion {
		fail(&apiError{400, "InvalidVersion", "Specified parameter Version is not valid."})
		return
	}
	var out map[string]any
	var e *apiError
	switch action {
	case "GenerateDataKey":
		out, e = f.generateDataKey(params)
	case "Decrypt":
		out, e = f.decrypt(params)
	default:
		e = &apiError{404, "InvalidAction.NotFound", "Specified api is not found, please check your url and method."}
	}
	if e != nil {
		fail(e)
		return
	}
	out["RequestId"] = reqID
	b, _ := json.Marshal(out)
	w.Header().Set("x-acs-request-id", reqID)
	writeJSON(w, aliJSON, http.StatusOK, b)
}

const aliJSON = "application/json;charset=utf-8"

func (f *Ali) writeError(w http.ResponseWriter, r *http.Request, reqID string, e *apiError) {
	b, _ := json.Marshal(map[string]any{
		"HttpStatus": e.Status,
		"RequestId":  reqID,
		"HostId":     r.Host,
		"Code":       e.Code,
		"Message":    e.Message,
		"Recommend":  "https://api.aliyun.com/troubleshoot?q=" + url.QueryEscape(e.Code) + "&product=Kms",
	})
	w.Header().Set("x-acs-request-id", reqID)
	writeJSON(w, aliJSON, e.Status, b)
}

// aliRequiredSigned are the headers signature method V3 requires in
// SignedHeaders.
var aliRequiredSigned = []string{"host", "x-acs-action", "x-acs-content-sha256", "x-acs-date", "x-acs-signature-nonce", "x-acs-version"}

// authenticate checks a signature method V3 Authorization header
// (https://www.alibabacloud.com/help/en/sdk/product-overview/v3-request-structure-and-signature):
//
//	CanonicalRequest = Method \n CanonicalURI \n CanonicalQueryString \n
//	                   CanonicalHeaders \n SignedHeaders \n HashedRequestPayload
//	StringToSign     = "ACS3-HMAC-SHA256" \n hex(SHA256(CanonicalRequest))
//	Signature        = hex(HMAC-SHA256(AccessKeySecret, StringToSign))
//
// with query keys sorted and values percent-encoded (RFC 3986, space as
// %20), the signed headers lower-cased, sorted, values trimmed, and the
// payload hash taken from x-acs-content-sha256 after checking it against
// the body.
func (f *Ali) authenticate(r *http.Request, body []byte) *apiError {
	incomplete := &apiError{400, "IncompleteSignature", "The request signature does not conform to Aliyun standards."}
	mismatch := &apiError{400, "SignatureDoesNotMatch", "Specified signature does not match our calculation."}
	const alg = "ACS3-HMAC-SHA256"
	rest, ok := strings.CutPrefix(r.Header.Get("Authorization"), alg+" ")
	if !ok {
		return incomplete
	}
	fields := map[string]string{}
	for _, p := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok {
			return incomplete
		}
		fields[k] = v
	}
	akid, signedHeaders, signature := fields["Credential"], fields["SignedHeaders"], fields["Signature"]
	if akid == "" || signedHeaders == "" || signature == "" {
		return incomplete
	}
	names := strings.Split(signedHeaders, ";")
	signed := map[string]bool{}
	for _, n := range names {
		if n == "" || n != strings.ToLower(n) {
			return incomplete
		}
		signed[n] = true
	}
	if !sort.StringsAreSorted(names) {
		return mismatch
	}
	for _, n := range aliRequiredSigned {
		if !signed[n] || (n != "host" && r.Header.Get(n) == "") {
			return incomplete
		}
	}
	for name := range r.Header {
		if l := strings.ToLower(name); strings.HasPrefix(l, "x-acs-") && !signed[l] {
			return incomplete // every common header present must be signed
		}
	}

	date, err := time.Parse("2006-01-02T15:04:05Z", r.Header.Get("x-acs-date"))
	if err != nil {
		return &apiError{400, "InvalidTimeStamp.Format", "Specified time stamp or date value is not well formatted."}
	}
	now := f.clock()
	if d := now.Sub(date); d > 15*time.Minute || d < -15*time.Minute {
		return &apiError{400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired."}
	}
	if sha256Hex(body) != r.Header.Get("x-acs-content-sha256") {
		return mismatch
	}

	entry, ok := f.lookupCreds(akid)
	if !ok {
		return &apiError{404, "InvalidAccessKeyId.NotFound", "The AccessKey ID provided does not exist in our records."}
	}
	if r.Header.Get("x-acs-security-token") != entry.SessionToken {
		return &apiError{400, "InvalidSecurityToken.MismatchWithAccessKey", "Specified SecurityToken mismatch with the AccessKey."}
	}
	if entry.expired {
		return &apiError{400, "InvalidSecurityToken.Expired", "Specified SecurityToken is expired."}
	}

	var ch strings.Builder
	for _, n := range names {
		var vals []string
		if n == "host" {
			vals = []string{r.Host}
		} else {
			vals = r.Header.Values(n)
		}
		for i, v := range vals {
			vals[i] = strings.TrimSpace(v)
		}
		sort.Strings(vals)
		ch.WriteString(n + ":" + strings.Join(vals, ",") + "\n")
	}
	uri := r.URL.EscapedPath()
	if uri == "" {
		uri = "/"
	}
	canonical := strings.Join([]string{
		r.Method,
		uri,
		canonicalQueryAli(r.URL.Query()),
		ch.String(),
		signedHeaders,
		r.Header.Get("x-acs-content-sha256"),
	}, "\n")
	stringToSign := alg + "\n" + sha256Hex([]byte(canonical))
	want := hex.EncodeToString(hmacSHA256([]byte(entry.AccessKeySecret), stringToSign))
	if !hmac.Equal([]byte(want), []byte(signature)) {
		return mismatch
	}

	// Only a correctly signed nonce is remembered, so a forged request
	// cannot burn a legitimate one.
	nonce := r.Header.Get("x-acs-signature-nonce")
	f.kmu.Lock()
	defer f.kmu.Unlock()
	for n, seen := range f.nonces {
		if now.Sub(seen) > 15*time.Minute {
			delete(f.nonces, n)
		}
	}
	if _, used := f.nonces[nonce]; used {
		return &apiError{400, "SignatureNonceUsed", "Specified signature nonce was used already."}
	}
	f.nonces[nonce] = now
	return nil
}

func canonicalQueryAli(q url.Values) string {
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		vals := append([]string(nil), q[k]...)
		sort.Strings(vals)
		for _, v := range vals {
			parts = append(parts, aliEscape(k)+"="+aliEscape(v))
		}
	}
	return strings.Join(parts, "&")
}

// aliEscape is RFC 3986 percent-encoding as the V3 method specifies.
func aliEscape(s string) string {
	return strings.NewReplacer("+", "%20", "*", "%2A", "%7E", "~").Replace(url.QueryEscape(s))
}

func (f *Ali) resolveLocked(keyID string) (*masterKey, *apiError) {
	id := keyID
	if strings.HasPrefix(id, "alias/") {
		target, ok := f.aliases[id]
		if !ok {
			return nil, &apiError{404, "Forbidden.AliasNotFound", "The specified Alias is not found."}
		}
		id = target
	}
	k, ok := f.keys[id]
	if !ok {
		return nil, &apiError{404, "Forbidden.KeyNotFound", "The specified Key is not found."}
	}
	return k, nil
}

func (f *Ali) usable(k *masterKey) *apiError {
	switch {
	case k.denied:
		return &apiError{403, "Forbidden.NoPermission", "This operation is forbidden by permission system."}
	case k.state == Disabled:
		return &apiError{409, "Rejected.Disabled", "The request was rejected because the key state is Disabled."}
	case k.state == PendingDeletion:
		return &apiError{409, "Rejected.PendingDeletion", "The request was rejected because the key state is PendingDeletion."}
	}
	return nil
}

func invalidParam(name string) *apiError {
	return &apiError{400, "InvalidParameter", `The specified parameter "` + name + `" is not valid.`}
}

// encryptionContext parses the EncryptionContext parameter: a JSON object
// of string values.
func encryptionContext(params url.Values) (map[string]string, *apiError) {
	s := params.Get("EncryptionContext")
	if s == "" {
		return nil, nil
	}
	var ec map[string]string
	if err := json.Unmarshal([]byte(s), &ec); err != nil {
		return nil, invalidParam("EncryptionContext")
	}
	return ec, nil
}

func dryRun(params url.Values) *apiError {
	if params.Get("DryRun") == "true" {
		return &apiError{400, "DryRunOperation", "Request validation has been passed with DryRun flag set."}
	}
	return nil
}

func (f *Ali) generateDataKey(params url.Values) (map[string]any, *apiError) {
	keyID := params.Get("KeyId")
	if keyID == "" {
		return nil, &apiError{400, "MissingParameter", `The parameter "KeyId" is needed but not provided.`}
	}
	n := 32
	switch spec := params.Get("KeySpec"); spec {
	case "", "AES_256":
	case "AES_128":
		n = 16
	default:
		return nil, &apiError{400, "InvalidParameter", "The specified parameter KeySpec is not valid."}
	}
	if s := params.Get("NumberOfBytes"); s != "" { // wins over KeySpec
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 || v > 1024 {
			return nil, invalidParam("NumberOfBytes")
		}
		n = v
	}
	ec, e := encryptionContext(params)
	if e != nil {
		return nil, e
	}
	f.kmu.Lock()
	k, e := f.resolveLocked(keyID)
	if e == nil {
		e = f.usable(k)
	}
	f.kmu.Unlock()
	if e != nil {
		return nil, e
	}
	if e := dryRun(params); e != nil {
		return nil, e
	}
	dk := randomBytes(n)
	blob, err := k.wrap([]byte(k.version), dk, ec)
	if err != nil {
		return nil, &apiError{500, "InternalFailure", "Internal Failure."}
	}
	f.recordIssued(dk)
	return map[string]any{
		"CiphertextBlob": base64.StdEncoding.EncodeToString(blob),
		"KeyId":          k.id,
		"KeyVersionId":   k.version,
		"Plaintext":      base64.StdEncoding.EncodeToString(dk),
	}, nil
}

func (f *Ali) decrypt(params url.Values) (map[string]any, *apiError) {
	s := params.Get("CiphertextBlob")
	if s == "" {
		return nil, &apiError{400, "MissingParameter", `The parameter "CiphertextBlob" is needed but not provided.`}
	}
	invalid := &apiError{400, "InvalidParameter", "The specified parameter is not valid."}
	blob, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, invalidParam("CiphertextBlob")
	}
	ec, e := encryptionContext(params)
	if e != nil {
		return nil, e
	}
	const headerLen = 36
	if len(blob) < headerLen {
		return nil, invalid
	}
	f.kmu.Lock()
	k, ok := f.versions[string(blob[:headerLen])]
	if ok {
		e = f.usable(k)
	}
	f.kmu.Unlock()
	if !ok {
		return nil, invalid
	}
	if e != nil {
		return nil, e
	}
	if e := dryRun(params); e != nil {
		return nil, e
	}
	dk, err := k.unwrap(blob, headerLen, ec)
	if err != nil {
		return nil, invalid
	}
	f.recordIssued(dk)
	return map[string]any{
		"KeyId":        k.id,
		"KeyVersionId": k.version,
		"Plaintext":    base64.StdEncoding.EncodeToString(dk),
	}, nil
}
