package config_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/csrfn/csrfn/core/config"
	"github.com/csrfn/csrfn/core/request"
	"github.com/csrfn/csrfn/core/seal"
)

// env returns a lookup func over m.
func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func masterB64(t *testing.T) string {
	t.Helper()
	k := make([]byte, 32)
	rand.Read(k)
	return base64.StdEncoding.EncodeToString(k)
}

// Secret values the tests plant; none may show up in any error or print.
const tokenValue = "tok-3f9a1c7e5b2d4a6f8e0c1b3d5f7a9c2e"

func TestFromEnvDefaults(t *testing.T) {
	t.Parallel()
	c, err := config.FromEnv(env(nil), config.DefaultStore)
	if err != nil {
		t.Fatal(err)
	}
	if c.Store.String() != config.DefaultStore || c.Listen != config.DefaultListen {
		t.Errorf("Store %s Listen %s", c.Store, c.Listen)
	}
	if c.Defaults != request.SeedDefaults {
		t.Errorf("Defaults %+v", c.Defaults)
	}
	if c.LogLevel != slog.LevelInfo || c.MasterKey != "" || c.Token != "" {
		t.Errorf("unexpected values: level %v, master key set %v, token set %v", c.LogLevel, c.MasterKey != "", c.Token != "")
	}
}

func TestFromEnvValues(t *testing.T) {
	t.Parallel()
	mk := masterB64(t)
	c, err := config.FromEnv(env(map[string]string{
		"CSRFN_STORE": "s3://bucket/prefix", "CSRFN_MASTER_KEY": mk, "CSRFN_LISTEN": "127.0.0.1:9100",
		"CSRFN_TOKEN": tokenValue, "CSRFN_LOG_LEVEL": "debug", "CSRFN_HOST_ID": "csrfn.test",
		"CSRFN_DEFAULT_ORGANIZATION": "Acme", "CSRFN_DEFAULT_ORGANIZATION_UNIT": "Web", "CSRFN_DEFAULT_COUNTRY": "de",
		"CSRFN_DEFAULT_STATE": "Berlin", "CSRFN_DEFAULT_CITY": "Berlin",
	}), "")
	if err != nil {
		t.Fatal(err)
	}
	want := request.Defaults{Organization: "Acme", OrganizationUnit: "Web", Country: "DE", State: "Berlin", City: "Berlin"}
	if c.Defaults != want {
		t.Errorf("Defaults %+v, want %+v", c.Defaults, want)
	}
	if c.Store.Scheme != "s3" || c.Listen != "127.0.0.1:9100" || c.LogLevel != slog.LevelDebug || c.HostID != "csrfn.test" {
		t.Errorf("config %+v", c)
	}
	if c.MasterKey.Reveal() != mk || c.Token.Reveal() != tokenValue {
		t.Error("Reveal does not return the values")
	}
}

func TestFromEnvErrors(t *testing.T) {
	t.Parallel()
	mk := masterB64(t)
	shortKey := base64.StdEncoding.EncodeToString([]byte("sixteen byte key"))
	tests := []struct {
		name    string
		env     map[string]string
		def     string
		wantVar string
		secrets []string // values that must not appear in the error
	}{
		{"country of 3", map[string]string{"CSRFN_DEFAULT_COUNTRY": "CHN"}, config.DefaultStore, "CSRFN_DEFAULT_COUNTRY", nil},
		{"country digits", map[string]string{"CSRFN_DEFAULT_COUNTRY": "12"}, config.DefaultStore, "CSRFN_DEFAULT_COUNTRY", nil},
		{"organization too long", map[string]string{"CSRFN_DEFAULT_ORGANIZATION": strings.Repeat("o", 65)}, config.DefaultStore, "CSRFN_DEFAULT_ORGANIZATION", nil},
		{"unit control", map[string]string{"CSRFN_DEFAULT_ORGANIZATION_UNIT": "a\x01b"}, config.DefaultStore, "CSRFN_DEFAULT_ORGANIZATION_UNIT", nil},
		{"state too long", map[string]string{"CSRFN_DEFAULT_STATE": strings.Repeat("s", 129)}, config.DefaultStore, "CSRFN_DEFAULT_STATE", nil},
		{"city bad UTF-8", map[string]string{"CSRFN_DEFAULT_CITY": "\xff"}, config.DefaultStore, "CSRFN_DEFAULT_CITY", nil},
		{"master key not base64", map[string]string{"CSRFN_MASTER_KEY": "notbase64", "CSRFN_TOKEN": tokenValue}, config.DefaultStore, "CSRFN_MASTER_KEY", []string{"notbase64", tokenValue}},
		{"master key short", map[string]string{"CSRFN_MASTER_KEY": shortKey}, config.DefaultStore, "CSRFN_MASTER_KEY", []string{shortKey, "sixteen byte key"}},
		{"both master keys", map[string]string{"CSRFN_MASTER_KEY": mk, "CSRFN_MASTER_KEY_FILE": "/etc/csrfn/master.key", "CSRFN_TOKEN": tokenValue}, config.DefaultStore, "CSRFN_MASTER_KEY", []string{mk, tokenValue}},
		{"store ftp", map[string]string{"CSRFN_STORE": "ftp://x", "CSRFN_MASTER_KEY": mk, "CSRFN_TOKEN": tokenValue}, config.DefaultStore, "CSRFN_STORE", []string{mk, tokenValue}},
		{"store not a URL", map[string]string{"CSRFN_STORE": "::nope"}, config.DefaultStore, "CSRFN_STORE", nil},
		{"store without scheme", map[string]string{"CSRFN_STORE": "/var/lib/csrfn"}, config.DefaultStore, "CSRFN_STORE", nil},
		{"store required", map[string]string{}, "", "CSRFN_STORE", nil},
		{"log level", map[string]string{"CSRFN_LOG_LEVEL": "loud", "CSRFN_MASTER_KEY": mk, "CSRFN_TOKEN": tokenValue}, config.DefaultStore, "CSRFN_LOG_LEVEL", []string{mk, tokenValue}},
		{"country with secrets set", map[string]string{"CSRFN_DEFAULT_COUNTRY": "CHN", "CSRFN_MASTER_KEY": mk, "CSRFN_TOKEN": tokenValue}, config.DefaultStore, "CSRFN_DEFAULT_COUNTRY", []string{mk, tokenValue}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := config.FromEnv(env(tc.env), tc.def)
			if err == nil {
				t.Fatalf("FromEnv succeeded: %v", c)
			}
			ce, ok := config.AsError(err)
			if !ok {
				t.Fatalf("error %T is not a *config.Error", err)
			}
			if ce.Var != tc.wantVar {
				t.Errorf("Var %q, want %q", ce.Var, tc.wantVar)
			}
			if !strings.Contains(err.Error(), tc.wantVar) {
				t.Errorf("error text does not name %s", tc.wantVar)
			}
			for _, s := range tc.secrets {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error text carries a secret value (%d characters)", len(s))
				}
			}
		})
	}
}

func TestSecretsNeverPrint(t *testing.T) {
	t.Parallel()
	mk := masterB64(t)
	c, err := config.FromEnv(env(map[string]string{"CSRFN_MASTER_KEY": mk, "CSRFN_TOKEN": tokenValue}), config.DefaultStore)
	if err != nil {
		t.Fatal(err)
	}
	var outs []string
	outs = append(outs, fmt.Sprintf("%v %+v", c, c), fmt.Sprintf("%v %+v %#v %s", *c, *c, *c, c.MasterKey))
	j, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	outs = append(outs, string(j))
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "cfg", c, "token", c.Token, "key", c.MasterKey)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("config", "cfg", *c, "token", c.Token)
	outs = append(outs, buf.String())
	for i, out := range outs {
		if strings.Contains(out, mk) || strings.Contains(out, tokenValue) {
			t.Errorf("output %d shows a secret", i)
		}
	}
	if !strings.Contains(outs[0], "[redacted]") {
		t.Error("the printed config does not show [redacted] where the secrets are")
	}
}

func TestLocalSealer(t *testing.T) {
	t.Parallel()
	mk := masterB64(t)
	c, err := config.FromEnv(env(map[string]string{"CSRFN_MASTER_KEY": mk}), config.DefaultStore)
	if err != nil {
		t.Fatal(err)
	}
	s, file, created, err := config.LocalSealer(c, rand.Reader, false)
	if err != nil || file != "" || created {
		t.Fatalf("LocalSealer = %q %v %v", file, created, err)
	}
	raw, _ := base64.StdEncoding.DecodeString(mk)
	if s.ID() != seal.KeyID(raw) {
		t.Error("the sealer does not use CSRFN_MASTER_KEY")
	}

	// A key file readable by others is refused, naming the variable.
	p := filepath.Join(t.TempDir(), "master.key")
	os.WriteFile(p, []byte(mk), 0o644)
	os.Chmod(p, 0o644)
	c2, err := config.FromEnv(env(map[string]string{"CSRFN_MASTER_KEY_FILE": p}), config.DefaultStore)
	if err != nil {
		t.Fatal(err)
	}
	_, _, _, err = config.LocalSealer(c2, rand.Reader, false)
	if ce, ok := config.AsError(err); !ok || ce.Var != "CSRFN_MASTER_KEY_FILE" {
		t.Errorf("readable key file: %v", err)
	}
	if err != nil && strings.Contains(err.Error(), mk) {
		t.Error("the error shows the key")
	}
	os.Chmod(p, 0o600)
	if _, file, _, err := config.LocalSealer(c2, rand.Reader, false); err != nil || file != p {
		t.Errorf("0600 key file: %q %v", file, err)
	}

	// Neither key and no default: the cloud adapters must be told.
	c3, _ := config.FromEnv(env(nil), config.DefaultStore)
	if _, _, _, err := config.LocalSealer(c3, rand.Reader, false); err == nil {
		t.Error("LocalSealer without any key succeeded")
	} else if _, ok := config.AsError(err); !ok {
		t.Errorf("error %v is not a *config.Error", err)
	}
}

func TestFileStore(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "store")
	c, err := config.FromEnv(env(map[string]string{"CSRFN_STORE": "file://" + dir}), "")
	if err != nil {
		t.Fatal(err)
	}
	s, err := config.FileStore(c)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s.Dir() != dir {
		t.Errorf("Dir %q, want %q", s.Dir(), dir)
	}
	c2, _ := config.FromEnv(env(map[string]string{"CSRFN_STORE": "oss://bucket/p"}), "")
	if _, err := config.FileStore(c2); err == nil {
		t.Error("FileStore accepted an oss:// store")
	} else if ce, ok := config.AsError(err); !ok || ce.Var != "CSRFN_STORE" {
		t.Errorf("error %v does not name CSRFN_STORE", err)
	}
	bad := filepath.Join(t.TempDir(), "open")
	os.Mkdir(bad, 0o755)
	os.Chmod(bad, 0o755)
	c3, _ := config.FromEnv(env(map[string]string{"CSRFN_STORE": "file://" + bad}), "")
	if _, err := config.FileStore(c3); err == nil {
		t.Error("FileStore accepted a 0755 directory")
	} else if ce, ok := config.AsError(err); !ok || ce.Var != "CSRFN_STORE" {
		t.Errorf("error %v does not name CSRFN_STORE", err)
	}
}
