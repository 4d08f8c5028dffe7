package kmsfake

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
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

// AWS is a fake AWS KMS endpoint speaking the AWS JSON 1.1 protocol as
// aws-sdk-go-v2/service/kms does: POST / with Content-Type
// application/x-amz-json-1.1 and X-Amz-Target TrentService.<Operation>,
// signed with Signature Version 4 (service "kms"). It serves
// GenerateDataKey and Decrypt.
//
// Errors are answered as KMS answers them: an HTTP status (400 for client
// errors, 5xx for service errors) and a JSON body {"__type": code,
// "message": text}, with an x-amzn-RequestId header. The codes it uses:
//
//	MissingAuthenticationTokenException, IncompleteSignatureException,
//	InvalidSignatureException, UnrecognizedClientException,
//	ExpiredTokenException                        request authentication
//	ValidationException, SerializationException  malformed request
//	NotFoundException                            unknown key id, ARN or alias
//	AccessDeniedException                        DenyAccess was set on the key
//	DisabledException, KMSInvalidStateException  key disabled / pending deletion
//	InvalidCiphertextException                   tampered blob, wrong encryption context
//	IncorrectKeyException                        Decrypt KeyId is not the blob's key
//	ThrottlingException (400)                    Throttled outage
//	ServiceUnavailableException (503)            Unavailable outage
//
// A CiphertextBlob is 0x01 || key id (36 bytes) || nonce || AES-256-GCM
// ciphertext and tag, under the key's master secret with the blob header
// and the encryption context as additional data.
type AWS struct {
	*server
	region  string
	account string
	creds   Credentials
}

// NewAWS starts a fake AWS KMS for region us-east-1, account 111122223333,
// accepting the long-term credentials returned by Credentials.
func NewAWS(t testing.TB) *AWS {
	t.Helper()
	a := &AWS{region: "us-east-1", account: "111122223333"}
	a.server = newServer(t, awsOp, a.handle, a.resolveLocked)
	a.creds = a.newCredentials("AKIA", false)
	return a
}

// URL is the endpoint to give the SDK (BaseEndpoint).
func (a *AWS) URL() string { return "http://" + a.Addr() }

// Region is the region requests must be signed for.
func (a *AWS) Region() string { return a.region }

// Credentials are the fake's long-term access key.
func (a *AWS) Credentials() Credentials { return a.creds }

// NewCredentials creates another access key; with sts it is temporary and
// needs its SessionToken. ExpireCredentials makes it expire.
func (a *AWS) NewCredentials(sts bool) Credentials {
	prefix := "AKIA"
	if sts {
		prefix = "ASIA"
	}
	return a.newCredentials(prefix, sts)
}

// CreateKey creates an enabled symmetric key and returns its ARN. A
// non-empty alias ("alias/name" or "name") is bound to it.
func (a *AWS) CreateKey(alias string) (arn string) {
	id := uuid()
	k := &masterKey{id: id, arn: a.keyARN(id), secret: randomBytes(32)}
	a.addKey(k, alias)
	return k.arn
}

func (a *AWS) keyARN(id string) string {
	return "arn:aws:kms:" + a.region + ":" + a.account + ":key/" + id
}

func awsOp(r *http.Request) string {
	return strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "TrentService.")
}

func (a *AWS) handle(w http.ResponseWriter, r *http.Request, outage Outage) {
	w.Header().Set("x-amzn-RequestId", uuid())
	switch outage {
	case Unavailable:
		writeAWSError(w, &apiError{503, "ServiceUnavailableException", "Service Unavailable"})
		return
	case Throttled:
		writeAWSError(w, &apiError{400, "ThrottlingException", "Rate exceeded"})
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return
	}
	if e := a.authenticate(r, body); e != nil {
		writeAWSError(w, e)
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		writeAWSError(w, &apiError{404, "UnknownOperationException", ""})
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != awsJSON {
		writeAWSError(w, &apiError{400, "SerializationException", "Unsupported content type " + r.Header.Get("Content-Type")})
		return
	}
	var out any
	var e *apiError
	switch r.Header.Get("X-Amz-Target") {
	case "TrentService.GenerateDataKey":
		out, e = a.generateDataKey(body)
	case "TrentService.Decrypt":
		out, e = a.decrypt(body)
	default:
		e = &apiError{400, "UnknownOperationException", ""}
	}
	if e != nil {
		writeAWSError(w, e)
		return
	}
	b, _ := json.Marshal(out)
	writeJSON(w, awsJSON, http.StatusOK, b)
}

// writeAWSError answers e as KMS does: {"__type": code, "message": text}.
func writeAWSError(w http.ResponseWriter, e *apiError) {
	body := map[string]string{"__type": e.Code}
	if e.Message != "" {
		body["message"] = e.Message
	}
	b, _ := json.Marshal(body)
	writeJSON(w, awsJSON, e.Status, b)
}

const awsJSON = "application/x-amz-json-1.1"

// authenticate checks an AWS Signature Version 4 Authorization header
// (https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html)
// against the fake's credentials. It recomputes the signature from the
// headers the request says it signed, the request line and the body.
func (a *AWS) authenticate(r *http.Request, body []byte) *apiError {
	bad := func(typ, msg string) *apiError { return &apiError{400, typ, msg} }
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return bad("MissingAuthenticationTokenException", "Missing Authentication Token")
	}
	const alg = "AWS4-HMAC-SHA256"
	rest, ok := strings.CutPrefix(auth, alg+" ")
	if !ok {
		return bad("IncompleteSignatureException", "Unsupported signature algorithm in Authorization header.")
	}
	fields := map[string]string{}
	for _, f := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(f), "=")
		if !ok {
			return bad("IncompleteSignatureException", "Authorization header requires each component to be of the form key=value.")
		}
		fields[k] = v
	}
	credential, signedHeaders, signature := fields["Credential"], fields["SignedHeaders"], fields["Signature"]
	if credential == "" || signedHeaders == "" || signature == "" {
		return bad("IncompleteSignatureException", "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters.")
	}
	scope := strings.Split(credential, "/")
	if len(scope) != 5 {
		return bad("IncompleteSignatureException", "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term.")
	}
	akid, day, region, service, term := scope[0], scope[1], scope[2], scope[3], scope[4]
	amzDate := r.Header.Get("X-Amz-Date")
	if amzDate == "" {
		return bad("IncompleteSignatureException", "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
	}
	t, err := time.Parse("20060102T150405Z", amzDate)
	if err != nil {
		return bad("IncompleteSignatureException", "X-Amz-Date must be in the ISO8601 Long Format.")
	}
	now := a.clock()
	if d := now.Sub(t); d > 5*time.Minute || d < -5*time.Minute {
		return bad("InvalidSignatureException", fmt.Sprintf("Signature expired: %s is now earlier than %s (%s - 5 min.)",
			amzDate, now.Add(-5*time.Minute).UTC().Format("20060102T150405Z"), now.UTC().Format("20060102T150405Z")))
	}
	switch {
	case term != "aws4_request":
		return bad("IncompleteSignatureException", "Credential should be scoped with a valid terminator: 'aws4_request', not '"+term+"'.")
	case day != amzDate[:8]:
		return bad("InvalidSignatureException", "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '"+day+"' != '"+amzDate[:8]+"'.")
	case service != "kms":
		return bad("InvalidSignatureException", "Credential should be scoped to correct service: 'kms'.")
	case region != a.region:
		return bad("InvalidSignatureException", "Credential should be scoped to a valid region.")
	}
	entry, ok := a.lookupCreds(akid)
	if !ok {
		return bad("UnrecognizedClientException", "The security token included in the request is invalid.")
	}
	token := r.Header.Get("X-Amz-Security-Token")
	if token != entry.SessionToken {
		return bad("UnrecognizedClientException", "The security token included in the request is invalid.")
	}
	if entry.expired {
		return bad("ExpiredTokenException", "The security token included in the request is expired")
	}

	names := strings.Split(signedHeaders, ";")
	if !sort.StringsAreSorted(names) {
		return bad("InvalidSignatureException", "The request signature we calculated does not match the signature you provided.")
	}
	signed := map[string]bool{}
	for _, n := range names {
		if n != strings.ToLower(n) || n == "" {
			return bad("InvalidSignatureException", "The request signature we calculated does not match the signature you provided.")
		}
		signed[n] = true
	}
	for _, must := range []string{"host", "x-amz-date"} {
		if !signed[must] {
			return bad("InvalidSignatureException", "The request signature we calculated does not match the signature you provided.")
		}
	}
	for name := range r.Header {
		if l := strings.ToLower(name); (l == "x-amz-security-token" || l == "x-amz-target") && !signed[l] {
			return bad("InvalidSignatureException", "Header "+l+" must be signed.")
		}
	}
	payloadHash := sha256Hex(body)
	if h := r.Header.Get("X-Amz-Content-Sha256"); h != "" && h != payloadHash {
		return bad("InvalidSignatureException", "The provided 'x-amz-content-sha256' header does not match what was computed.")
	}

	var ch strings.Builder
	for _, n := range names {
		var vals []string
		switch n {
		case "host":
			vals = []string{r.Host}
		case "content-length":
			vals = []string{strconv.FormatInt(r.ContentLength, 10)}
		default:
			vals = r.Header.Values(n)
		}
		for i, v := range vals {
			vals[i] = strings.Join(strings.Fields(v), " ")
		}
		ch.WriteString(n + ":" + strings.Join(vals, ",") + "\n")
	}
	canonical := strings.Join([]string{
		r.Method,
		canonicalURI(r.URL),
		canonicalQueryAWS(r.URL.Query()),
		ch.String(),
		signedHeaders,
		payloadHash,
	}, "\n")
	stringToSign := alg + "\n" + amzDate + "\n" + strings.Join(scope[1:], "/") + "\n" + sha256Hex([]byte(canonical))
	key := hmacSHA256([]byte("AWS4"+entry.AccessKeySecret), day)
	key = hmacSHA256(key, region)
	key = hmacSHA256(key, service)
	key = hmacSHA256(key, term)
	want := hex.EncodeToString(hmacSHA256(key, stringToSign))
	if !hmac.Equal([]byte(want), []byte(signature)) {
		return bad("InvalidSignatureException", "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")
	}
	return nil
}

// canonicalURI is the URI-encoded path, each segment encoded twice as
// SigV4 requires for every service but S3; "/" stays "/".
func canonicalURI(u *url.URL) string {
	p := u.EscapedPath()
	if p == "" {
		return "/"
	}
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = awsEscape(s)
	}
	return strings.Join(segs, "/")
}

func canonicalQueryAWS(q url.Values) string {
	var pairs []string
	for k, vs := range q {
		for _, v := range vs {
			pairs = append(pairs, awsEscape(k)+"="+awsEscape(v))
		}
	}
	sort.Strings(pairs)
	return strings.Join(pairs, "&")
}

// awsEscape is RFC 3986 percent-encoding: everything but unreserved
// characters, upper-case hex.
func awsEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// resolveLocked finds a key by id, key ARN, alias name or alias ARN.
func (a *AWS) resolveLocked(keyID string) (*masterKey, *apiError) {
	notFound := func(what string) *apiError { return &apiError{400, "NotFoundException", what} }
	id := keyID
	if rest, ok := strings.CutPrefix(keyID, "arn:aws:kms:"); ok {
		parts := strings.SplitN(rest, ":", 3)
		if len(parts) != 3 || parts[0] != a.region || parts[1] != a.account {
			return nil, notFound("Invalid arn " + keyID)
		}
		id = parts[2]
		if name, ok := strings.CutPrefix(id, "key/"); ok {
			id = name
		}
	}
	if strings.HasPrefix(id, "alias/") {
		target, ok := a.aliases[id]
		if !ok {
			return nil, notFound("Alias arn:aws:kms:" + a.region + ":" + a.account + ":" + id + " is not found.")
		}
		id = target
	}
	k, ok := a.keys[id]
	if !ok {
		return nil, notFound("Key '" + a.keyARN(id) + "' does not exist")
	}
	return k, nil
}

// usable applies the key policy and the key state for operation op.
func (a *AWS) usable(k *masterKey, op string) *apiError {
	switch {
	case k.denied:
		return &apiError{400, "AccessDeniedException", "User: arn:aws:iam::" + a.account + ":user/kmsfake is not authorized to perform: kms:" + op +
			" on resource: " + k.arn + " because no identity-based policy allows the kms:" + op + " action"}
	case k.state == Disabled:
		return &apiError{400, "DisabledException", k.arn + " is disabled."}
	case k.state == PendingDeletion:
		return &apiError{400, "KMSInvalidStateException", k.arn + " is pending deletion."}
	}
	return nil
}

func decodeAWSJSON(body []byte, v any) *apiError {
	if err := json.Unmarshal(body, v); err != nil {
		return &apiError{400, "SerializationException", "Start of structure or map found where not expected."}
	}
	return nil
}

func (a *AWS) generateDataKey(body []byte) (any, *apiError) {
	var in struct {
		KeyId             *string
		KeySpec           *string
		NumberOfBytes     *int
		EncryptionContext map[string]string
		DryRun            bool
	}
	if e := decodeAWSJSON(body, &in); e != nil {
		return nil, e
	}
	if in.KeyId == nil {
		return nil, &apiError{400, "ValidationException", "1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null"}
	}
	n := 0
	switch {
	case (in.KeySpec == nil) == (in.NumberOfBytes == nil):
		return nil, &apiError{400, "ValidationException", "Please specify either number of bytes or key spec."}
	case in.KeySpec != nil && *in.KeySpec == "AES_256":
		n = 32
	case in.KeySpec != nil && *in.KeySpec == "AES_128":
		n = 16
	case in.KeySpec != nil:
		return nil, &apiError{400, "ValidationException", "1 validation error detected: Value '" + *in.KeySpec +
			"' at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set: [AES_256, AES_128]"}
	case *in.NumberOfBytes < 1 || *in.NumberOfBytes > 1024:
		return nil, &apiError{400, "ValidationException", "1 validation error detected: Value '" + strconv.Itoa(*in.NumberOfBytes) +
			"' at 'numberOfBytes' failed to satisfy constraint: Member must have value between 1 and 1024"}
	default:
		n = *in.NumberOfBytes
	}
	a.kmu.Lock()
	k, e := a.resolveLocked(*in.KeyId)
	if e == nil {
		e = a.usable(k, "GenerateDataKey")
	}
	a.kmu.Unlock()
	if e != nil {
		return nil, e
	}
	if in.DryRun {
		return nil, &apiError{412, "DryRunOperationException", "The request would have succeeded, but the DryRun option is set."}
	}
	dk := randomBytes(n)
	blob, err := k.wrap(append([]byte{1}, k.id...), dk, in.EncryptionContext)
	if err != nil {
		return nil, &apiError{500, "KMSInternalException", ""}
	}
	a.recordIssued(dk)
	return map[string]any{"CiphertextBlob": blob, "KeyId": k.arn, "Plaintext": dk}, nil
}

func (a *AWS) decrypt(body []byte) (any, *apiError) {
	var in struct {
		CiphertextBlob      *string
		KeyId               *string
		EncryptionContext   map[string]string
		EncryptionAlgorithm string
		DryRun              bool
	}
	if e := decodeAWSJSON(body, &in); e != nil {
		return nil, e
	}
	if in.CiphertextBlob == nil {
		return nil, &apiError{400, "ValidationException", "1 validation error detected: Value null at 'ciphertextBlob' failed to satisfy constraint: Member must not be null"}
	}
	blob, err := base64.StdEncoding.DecodeString(*in.CiphertextBlob)
	if err != nil {
		return nil, &apiError{400, "SerializationException", "Base64 encoded blob is invalid."}
	}
	invalid := &apiError{400, "InvalidCiphertextException", ""}
	const headerLen = 1 + 36
	if len(blob) < headerLen || blob[0] != 1 {
		return nil, invalid
	}
	a.kmu.Lock()
	k, ok := a.keys[string(blob[1:headerLen])]
	var e *apiError
	switch {
	case !ok:
		e = invalid
	case in.KeyId != nil:
		var want *masterKey
		if want, e = a.resolveLocked(*in.KeyId); e == nil && want != k {
			e = &apiError{400, "IncorrectKeyException", "The key ID in the request does not identify a CMK that can perform this operation."}
		}
	}
	if e == nil {
		e = a.usable(k, "Decrypt")
	}
	a.kmu.Unlock()
	if e != nil {
		return nil, e
	}
	if in.EncryptionAlgorithm != "" && in.EncryptionAlgorithm != "SYMMETRIC_DEFAULT" {
		return nil, &apiError{400, "InvalidKeyUsageException", "You cannot use " + in.EncryptionAlgorithm + " with a symmetric key."}
	}
	if in.DryRun {
		return nil, &apiError{412, "DryRunOperationException", "The request would have succeeded, but the DryRun option is set."}
	}
	dk, err := k.unwrap(blob, headerLen, in.EncryptionContext)
	if err != nil {
		return nil, invalid
	}
	a.recordIssued(dk)
	return map[string]any{"KeyId": k.arn, "Plaintext": dk, "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}, nil
}
