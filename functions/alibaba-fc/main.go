// Command main is csrfn on Alibaba Cloud Function Compute 3.0 (runtime go1,
// handler main). It serves HTTP triggers, timer triggers, EventBridge
// (CloudEvents) and direct invokes, telling them apart from the payload.
package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"

	"github.com/aliyun/alibabacloud-oss-go-sdk-v2/oss/credentials"
	"github.com/aliyun/fc-runtime-go-sdk/fc"

	"github.com/csrfn/csrfn/cloud/alikms"
	"github.com/csrfn/csrfn/cloud/ossstore"
	"github.com/csrfn/csrfn/core/config"
	"github.com/csrfn/csrfn/core/seal"
)

func main() {
	a, err := newAdapter(context.Background(), os.LookupEnv)
	if err != nil {
		// FC reports the exit as a start failure; the line names the variable.
		fmt.Fprintln(os.Stderr, "csrfn: init:", err)
		os.Exit(1)
	}
	// The SDK passes the payload through untouched only to a []byte
	// parameter; any other type is json.Unmarshal'ed first, and a payload
	// that is not JSON would fail in the SDK as a SyntaxError function error
	// instead of our 400 result.
	fc.Start(func(ctx context.Context, payload []byte) (any, error) { return a.Handle(ctx, payload) })
}

// logOutput receives the request log lines; tests point it at a buffer.
var logOutput io.Writer = os.Stdout

func newAdapter(ctx context.Context, lookup func(string) (string, bool)) (*adapter, error) {
	if v, _ := lookup("DEBUG"); strings.Contains(v, "dara") {
		// The Alibaba SDKs then print request headers, security token included.
		return nil, &config.Error{Var: "DEBUG", Reason: "\"dara\" makes the Alibaba SDKs log credentials; unset it"}
	}
	fns, err := config.BuildFunctions(ctx, lookup, platform(lookup), logOutput)
	if err != nil {
		return nil, err
	}
	return &adapter{fns}, nil
}

// EnvKMSEndpoint overrides the Alibaba KMS endpoint (default: the region's
// public endpoint; e.g. kms-vpc.REGION.aliyuncs.com inside a VPC).
const EnvKMSEndpoint = "CSRFN_KMS_ENDPOINT"

// platform is what Function Compute adds to the neutral wiring: oss://
// stores and Alibaba KMS envelope sealing. Both sign with the function
// role's credentials: those FC passes with each invocation (see Handle),
// else the ALIBABA_CLOUD_* variables FC sets for a function with a role.
func platform(lookup func(string) (string, bool)) config.Platform {
	creds := alikms.ContextCredentials(alikms.EnvCredentials())
	return config.Platform{
		Stores: map[string]func(context.Context, *url.URL) (config.Store, error){
			"oss": func(ctx context.Context, u *url.URL) (config.Store, error) {
				opts, err := ossstore.OptionsFromEnv(lookup)
				if err != nil {
					return nil, err
				}
				if opts.KMSKeyID == "" { // server-side encryption under the sealing key by default
					opts.KMSKeyID, _ = lookup(config.EnvKMSKeyID)
				}
				opts.CredentialsProvider = ossCredentials{creds}
				return ossstore.New(ctx, u, opts)
			},
		},
		KMS: func(ctx context.Context, keyID string) (seal.Sealer, error) {
			endpoint, _ := lookup(EnvKMSEndpoint)
			k, err := alikms.New(ctx, keyID, alikms.Options{Endpoint: endpoint, Credentials: creds})
			if err != nil {
				return nil, err
			}
			return alikms.Sealer(k, nil), nil
		},
	}
}

// ossCredentials gives the OSS SDK the same credentials as KMS.
type ossCredentials struct{ p alikms.CredentialsProvider }

func (o ossCredentials) GetCredentials(ctx context.Context) (credentials.Credentials, error) {
	c, err := o.p.Credentials(ctx)
	if err != nil {
		return credentials.Credentials{}, err
	}
	return credentials.Credentials{AccessKeyID: c.AccessKeyID, AccessKeySecret: c.AccessKeySecret, SecurityToken: c.SecurityToken}, nil
}
