package kmsfake

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// awsCall sends a JSON 1.1 request signed by the AWS SDK's own SigV4
// signer (independent of the fake's verifier); tamper may alter the
// request after signing.
func awsCall(t *testing.T, f *AWS, c Credentials, region string, at time.Time, target string, body any, tamper func(*http.Request)) (int, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, f.URL()+"/", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "TrentService."+target)
	if c.SessionToken != "" {
		req.Header.Set("X-Amz-Security-Token", c.SessionToken)
	}
	sum := sha256.Sum256(b)
	creds := aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.AccessKeySecret, SessionToken: c.SessionToken}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "kms", region, at); err != nil {
		t.Fatal(err)
	}
	if tamper != nil {
		tamper(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// spoiled returns c with a wrong secret, and c under an access key id the
// fake does not know.
func spoiled(c Credentials, unknownID string) (wrongSecret, unknownKey Credentials) {
	wrongSecret, unknownKey = c, c
	wrongSecret.AccessKeySecret += "x"
	unknownKey.AccessKeyID = unknownID
	return wrongSecret, unknownKey
}

func TestAWSSignatureV4(t *testing.T) {
	f := NewAWS(t)
	arn := f.CreateKey("")
	now := time.Now()
	gen := map[string]any{"KeyId": arn, "KeySpec": "AES_256", "EncryptionContext": map[string]string{"a": "b"}}

	status, out := awsCall(t, f, f.Credentials(), f.Region(), now, "GenerateDataKey", gen, nil)
	if status != 200 || out["KeyId"] != arn || out["Plaintext"] == nil || out["CiphertextBlob"] == nil {
		t.Fatalf("GenerateDataKey: %d %v", status, out)
	}
	sts := f.NewCredentials(true)
	if status, out := awsCall(t, f, sts, f.Region(), now, "GenerateDataKey", gen, nil); status != 200 {
		t.Fatalf("STS credentials: %d %v", status, out)
	}

	wrong, unknown := spoiled(f.Credentials(), "AKIANOTKNOWN")
	for _, c := range []struct {
		name   string
		creds  Credentials
		region string
		at     time.Time
		tamper func(*http.Request)
		want   string
	}{
		{"wrong secret", wrong, f.Region(), now, nil, "InvalidSignatureException"},
		{"unknown key", unknown, f.Region(), now, nil, "UnrecognizedClientException"},
		{"other region", f.Credentials(), "eu-west-1", now, nil, "InvalidSignatureException"},
		{"stale", f.Credentials(), f.Region(), now.Add(-6 * time.Minute), nil, "InvalidSignatureException"},
		{"target changed", f.Credentials(), f.Region(), now, func(r *http.Request) { r.Header.Set("X-Amz-Target", "TrentService.Decrypt") }, "InvalidSignatureException"},
		{"body changed", f.Credentials(), f.Region(), now, func(r *http.Request) {
			b, _ := json.Marshal(map[string]any{"KeyId": arn, "NumberOfBytes": 64})
			r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
		}, "InvalidSignatureException"},
		{"no signature", f.Credentials(), f.Region(), now, func(r *http.Request) { r.Header.Del("Authorization") }, "MissingAuthenticationTokenException"},
		{"token dropped", sts, f.Region(), now, func(r *http.Request) { r.Header.Del("X-Amz-Security-Token") }, "UnrecognizedClientException"},
	} {
		status, out := awsCall(t, f, c.creds, c.region, c.at, "GenerateDataKey", gen, c.tamper)
		if status != 400 || out["__type"] != c.want {
			t.Errorf("%s: %d %v, want 400 %s", c.name, status, out, c.want)
		}
	}
	f.ExpireCredentials(sts.AccessKeyID)
	if status, out := awsCall(t, f, sts, f.Region(), now, "GenerateDataKey", gen, nil); status != 400 || out["__type"] != "ExpiredTokenException" {
		t.Errorf("expired: %d %v", status, out)
	}
}

func TestAWSDataKeys(t *testing.T) {
	f := NewAWS(t)
	arn := f.CreateKey("app")
	other := f.CreateKey("")
	now := time.Now()
	call := func(target string, body any) (int, map[string]any) {
		return awsCall(t, f, f.Credentials(), f.Region(), now, target, body, nil)
	}
	ec := map[string]string{"csrfn:PubMd5": "x", "b": "c"}
	status, out := call("GenerateDataKey", map[string]any{"KeyId": "alias/app", "NumberOfBytes": 32, "EncryptionContext": ec})
	if status != 200 {
		t.Fatalf("%d %v", status, out)
	}
	blob, _ := base64.StdEncoding.DecodeString(out["CiphertextBlob"].(string))
	pt, _ := base64.StdEncoding.DecodeString(out["Plaintext"].(string))
	if keys := f.IssuedDataKeys(); len(keys) != 1 || !bytes.Equal(keys[0], pt) || len(pt) != 32 {
		t.Fatal("IssuedDataKeys does not hold the data key")
	}
	dec := func(blob []byte, keyID string, ec map[string]string) (int, map[string]any) {
		in := map[string]any{"CiphertextBlob": blob, "EncryptionContext": ec}
		if keyID != "" {
			in["KeyId"] = keyID
		}
		return call("Decrypt", in)
	}
	if status, out := dec(blob, arn, ec); status != 200 || out["Plaintext"] != base64.StdEncoding.EncodeToString(pt) || out["KeyId"] != arn {
		t.Fatalf("Decrypt: %d %v", status, out)
	}
	if status, _ := dec(blob, "", ec); status != 200 {
		t.Fatal("Decrypt without KeyId failed")
	}
	for i := range blob {
		bad := bytes.Clone(blob)
		bad[i] ^= 0x20
		if status, out := dec(bad, "", ec); status != 400 || out["__type"] != "InvalidCiphertextException" {
			t.Fatalf("byte %d flipped: %d %v", i, status, out)
		}
	}
	for _, wrong := range []map[string]string{nil, {"csrfn:PubMd5": "y", "b": "c"}, {"csrfn:PubMd5": "x"}, {"csrfn:PubMd5": "x", "b": "c", "d": ""}} {
		if status, out := dec(blob, "", wrong); status != 400 || out["__type"] != "InvalidCiphertextException" {
			t.Fatalf("context %v: %d %v", wrong, status, out)
		}
	}
	if status, out := dec(blob, other, ec); status != 400 || out["__type"] != "IncorrectKeyException" {
		t.Fatalf("other key: %d %v", status, out)
	}
	if status, out := call("GenerateDataKey", map[string]any{"KeyId": "alias/none", "KeySpec": "AES_256"}); status != 400 || out["__type"] != "NotFoundException" {
		t.Fatalf("unknown alias: %d %v", status, out)
	}
	if status, out := call("GenerateDataKey", map[string]any{"KeyId": arn}); status != 400 || out["__type"] != "ValidationException" {
		t.Fatalf("no key spec: %d %v", status, out)
	}
	if status, out := call("Encrypt", map[string]any{"KeyId": arn}); status != 400 || out["__type"] != "UnknownOperationException" {
		t.Fatalf("Encrypt: %d %v", status, out)
	}
}

func TestOutageSwitch(t *testing.T) {
	f := NewAWS(t)
	arn := f.CreateKey("")
	gen := map[string]any{"KeyId": arn, "KeySpec": "AES_256"}
	now := time.Now()
	f.SetOutage(Unavailable)
	if status, out := awsCall(t, f, f.Credentials(), f.Region(), now, "GenerateDataKey", gen, nil); status != 503 {
		t.Fatalf("unavailable: %d %v", status, out)
	}
	f.SetOutage(Throttled)
	if status, out := awsCall(t, f, f.Credentials(), f.Region(), now, "GenerateDataKey", gen, nil); status != 400 || out["__type"] != "ThrottlingException" {
		t.Fatalf("throttled: %d %v", status, out)
	}
	f.SetOutage(Refused)
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	_, err := fresh.Post(f.URL(), "application/x-amz-json-1.1", strings.NewReader("{}"))
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("refused: %v", err)
	}
	f.SetOutage(Stalled)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, f.URL(), strings.NewReader("{}"))
	if _, err := fresh.Do(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("stalled: %v", err)
	}
	f.SetOutage(Up)
	if status, out := awsCall(t, f, f.Credentials(), f.Region(), now, "GenerateDataKey", gen, nil); status != 200 {
		t.Fatalf("back up: %d %v", status, out)
	}
	if n := f.Calls("GenerateDataKey"); n != 3 {
		t.Errorf("Calls = %d, want 3", n)
	}
}

// aliSign signs r with signature method V3 following the published
// algorithm, as darabonba-openapi's GetAuthorization does.
func aliSign(r *http.Request, c Credentials, body []byte) {
	sum := sha256.Sum256(body)
	r.Header.Set("x-acs-content-sha256", hex.EncodeToString(sum[:]))
	if c.SessionToken != "" {
		r.Header.Set("x-acs-accesskey-id", c.AccessKeyID)
		r.Header.Set("x-acs-security-token", c.SessionToken)
	}
	var names []string
	vals := map[string]string{"host": r.Host}
	for k := range r.Header {
		l := strings.ToLower(k)
		if strings.HasPrefix(l, "x-acs-") || l == "content-type" {
			vals[l] = strings.TrimSpace(r.Header.Get(k))
		}
	}
	for k := range vals {
		names = append(names, k)
	}
	sort.Strings(names)
	var ch strings.Builder
	for _, n := range names {
		ch.WriteString(n + ":" + vals[n] + "\n")
	}
	canonical := strings.Join([]string{r.Method, "/", canonicalQueryAli(r.URL.Query()), ch.String(),
		strings.Join(names, ";"), r.Header.Get("x-acs-content-sha256")}, "\n")
	h := sha256.Sum256([]byte(canonical))
	m := hmac.New(sha256.New, []byte(c.AccessKeySecret))
	m.Write([]byte("ACS3-HMAC-SHA256\n" + hex.EncodeToString(h[:])))
	r.Header.Set("Authorization", "ACS3-HMAC-SHA256 Credential="+c.AccessKeyID+",SignedHeaders="+strings.Join(names, ";")+
		",Signature="+hex.EncodeToString(m.Sum(nil)))
}

type aliReq struct {
	action string
	query  url.Values
	form   url.Values // sent as the body when set
	creds  Credentials
	date   time.Time
	nonce  string
	tamper func(*http.Request)
}

func aliCall(t *testing.T, f *Ali, q aliReq) (int, map[string]any) {
	t.Helper()
	var body []byte
	if q.form != nil {
		body = []byte(q.form.Encode())
	}
	u := f.URL() + "/"
	if len(q.query) > 0 {
		u += "?" + q.query.Encode()
	}
	req, _ := http.NewRequest(http.MethodPost, u, bytes.NewReader(body))
	if q.form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if q.creds == (Credentials{}) {
		q.creds = f.Credentials()
	}
	if q.date.IsZero() {
		q.date = time.Now()
	}
	if q.nonce == "" {
		q.nonce = randomToken(32)
	}
	req.Header.Set("x-acs-action", q.action)
	req.Header.Set("x-acs-version", AliAPIVersion)
	req.Header.Set("x-acs-date", q.date.UTC().Format("2006-01-02T15:04:05Z"))
	req.Header.Set("x-acs-signature-nonce", q.nonce)
	req.Header.Set("accept", "application/json")
	aliSign(req, q.creds, body)
	if q.tamper != nil {
		q.tamper(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode != 200 && (out["RequestId"] == nil || out["Code"] == nil || out["Message"] == nil) {
		t.Fatalf("error body %v lacks RequestId/Code/Message", out)
	}
	return resp.StatusCode, out
}

func TestAliSignatureV3(t *testing.T) {
	f := NewAli(t)
	id := f.CreateKey("")
	gen := url.Values{"KeyId": {id}, "KeySpec": {"AES_256"}, "EncryptionContext": {`{"csrfn:PubMd5":"a b*~"}`}}
	if status, out := aliCall(t, f, aliReq{action: "GenerateDataKey", query: gen}); status != 200 || out["KeyId"] != id ||
		out["KeyVersionId"] == nil || out["RequestId"] == nil || out["Plaintext"] == nil || out["CiphertextBlob"] == nil {
		t.Fatalf("GenerateDataKey: %d %v", status, out)
	}
	if status, out := aliCall(t, f, aliReq{action: "GenerateDataKey", form: gen}); status != 200 {
		t.Fatalf("form body: %d %v", status, out)
	}
	sts := f.NewCredentials(true)
	if status, out := aliCall(t, f, aliReq{action: "GenerateDataKey", query: gen, creds: sts}); status != 200 {
		t.Fatalf("STS: %d %v", status, out)
	}
	wrong, unknown := spoiled(f.Credentials(), "LTAInotknown")
	for _, c := range []struct {
		name   string
		req    aliReq
		status int
		code   string
	}{
		{"wrong secret", aliReq{creds: wrong}, 400, "SignatureDoesNotMatch"},
		{"unknown key", aliReq{creds: unknown}, 404, "InvalidAccessKeyId.NotFound"},
		{"stale", aliReq{date: time.Now().Add(-16 * time.Minute)}, 400, "InvalidTimeStamp.Expired"},
		{"query changed", aliReq{tamper: func(r *http.Request) { r.URL.RawQuery = strings.Replace(r.URL.RawQuery, "AES_256", "AES_128", 1) }}, 400, "SignatureDoesNotMatch"},
		{"action changed", aliReq{tamper: func(r *http.Request) { r.Header.Set("x-acs-action", "Decrypt") }}, 400, "SignatureDoesNotMatch"},
		{"unsigned header", aliReq{tamper: func(r *http.Request) { r.Header.Set("x-acs-extra", "1") }}, 400, "IncompleteSignature"},
		{"no signature", aliReq{tamper: func(r *http.Request) { r.Header.Del("Authorization") }}, 400, "IncompleteSignature"},
		{"token mismatch", aliReq{creds: sts, tamper: func(r *http.Request) {
			r.Header.Del("x-acs-security-token")
			r.Header.Del("x-acs-accesskey-id")
		}}, 400, "InvalidSecurityToken.MismatchWithAccessKey"},
	} {
		c.req.action, c.req.query = "GenerateDataKey", gen
		if status, out := aliCall(t, f, c.req); status != c.status || out["Code"] != c.code {
			t.Errorf("%s: %d %v, want %d %s", c.name, status, out, c.status, c.code)
		}
	}
	nonce := randomToken(20)
	aliCall(t, f, aliReq{action: "GenerateDataKey", query: gen, nonce: nonce})
	if status, out := aliCall(t, f, aliReq{action: "GenerateDataKey", query: gen, nonce: nonce}); status != 400 || out["Code"] != "SignatureNonceUsed" {
		t.Errorf("replayed nonce: %d %v", status, out)
	}
	f.ExpireCredentials(sts.AccessKeyID)
	if status, out := aliCall(t, f, aliReq{action: "GenerateDataKey", query: gen, creds: sts}); status != 400 || out["Code"] != "InvalidSecurityToken.Expired" {
		t.Errorf("expired STS: %d %v", status, out)
	}
}

func TestAliDataKeys(t *testing.T) {
	f := NewAli(t)
	id := f.CreateKey("app")
	ec := `{"csrfn:PubMd5":"x"}`
	status, out := aliCall(t, f, aliReq{action: "GenerateDataKey", query: url.Values{"KeyId": {"alias/app"}, "EncryptionContext": {ec}}})
	if status != 200 {
		t.Fatalf("%d %v", status, out)
	}
	blob := out["CiphertextBlob"].(string)
	raw, _ := base64.StdEncoding.DecodeString(blob)
	if string(raw[:36]) != out["KeyVersionId"] {
		t.Fatal("blob does not start with the key version id")
	}
	dec := func(blob, ec string) (int, map[string]any) {
		q := url.Values{"CiphertextBlob": {blob}}
		if ec != "" {
			q.Set("EncryptionContext", ec)
		}
		return aliCall(t, f, aliReq{action: "Decrypt", query: q})
	}
	if status, got := dec(blob, `{ "csrfn:PubMd5" : "x" }`); status != 200 || got["Plaintext"] != out["Plaintext"] || got["KeyId"] != id {
		t.Fatalf("Decrypt: %d %v", status, got)
	}
	for i := range raw {
		bad := bytes.Clone(raw)
		bad[i] ^= 4
		if status, got := dec(base64.StdEncoding.EncodeToString(bad), ec); status != 400 || got["Code"] != "InvalidParameter" {
			t.Fatalf("byte %d flipped: %d %v", i, status, got)
		}
	}
	if status, got := dec(blob, `{"csrfn:PubMd5":"y"}`); status != 400 || got["Code"] != "InvalidParameter" {
		t.Fatalf("wrong context: %d %v", status, got)
	}
	f.SetKeyState(id, Disabled)
	if status, got := dec(blob, ec); status != 409 || got["Code"] != "Rejected.Disabled" {
		t.Fatalf("disabled: %d %v", status, got)
	}
	f.SetKeyState(id, Enabled)
	if status, got := aliCall(t, f, aliReq{action: "GenerateDataKey", query: url.Values{"KeyId": {"nope"}}}); status != 404 || got["Code"] != "Forbidden.KeyNotFound" {
		t.Fatalf("unknown key: %d %v", status, got)
	}
	if status, got := aliCall(t, f, aliReq{action: "Encrypt", query: url.Values{"KeyId": {id}}}); status != 404 || got["Code"] != "InvalidAction.NotFound" {
		t.Fatalf("Encrypt: %d %v", status, got)
	}
	f.SetOutage(Unavailable)
	if status, got := dec(blob, ec); status != 503 || got["Code"] != "ServiceUnavailableTemporary" {
		t.Fatalf("outage: %d %v", status, got)
	}
	f.SetOutage(Up)
}

func TestLeakedSecret(t *testing.T) {
	s := []byte{0xde, 0xad, 0xbe, 0xef, 0xfa}
	for _, text := range []string{"x" + string(s), "deadbeeffa", "DEADBEEFFA", base64.StdEncoding.EncodeToString(s), base64.RawURLEncoding.EncodeToString(s)} {
		if _, ok := LeakedSecret(text, []byte("other"), s); !ok {
			t.Errorf("missed %q", text)
		}
	}
	if i, ok := LeakedSecret("nothing here", s); ok || i != -1 {
		t.Error("false positive")
	}
}
