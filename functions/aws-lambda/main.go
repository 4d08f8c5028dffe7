// Command bootstrap is csrfn on AWS Lambda (provided.al2023, built with
// -tags lambda.norpc). It serves API Gateway REST (payload 1.0), HTTP API
// and Function URL (payload 2.0), ALB, SQS, EventBridge, and direct or
// scheduled invokes, telling them apart from the payload itself.
package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/csrfn/csrfn/cloud/awskms"
	"github.com/csrfn/csrfn/cloud/s3store"
	"github.com/csrfn/csrfn/core/config"
	"github.com/csrfn/csrfn/core/seal"
)

func main() {
	a, err := newAdapter(context.Background(), os.LookupEnv)
	if err != nil {
		// Lambda reports the exit as an init error; the line names the variable.
		fmt.Fprintln(os.Stderr, "csrfn: init:", err)
		os.Exit(1)
	}
	lambda.Start(a.Handle)
}

// logOutput receives the request log lines; tests point it at a buffer.
var logOutput io.Writer = os.Stdout

func newAdapter(ctx context.Context, lookup func(string) (string, bool)) (*adapter, error) {
	fns, err := config.BuildFunctions(ctx, lookup, platform(lookup), logOutput)
	if err != nil {
		return nil, err
	}
	return &adapter{fns}, nil
}

// platform is what Lambda adds to the neutral wiring: s3:// stores and AWS
// KMS envelope sealing, both with the function role's credentials from the
// SDK's default chain.
func platform(lookup func(string) (string, bool)) config.Platform {
	return config.Platform{
		Stores: map[string]func(context.Context, *url.URL) (config.Store, error){
			"s3": func(ctx context.Context, u *url.URL) (config.Store, error) {
				opts, err := s3store.OptionsFromEnv(lookup)
				if err != nil {
					return nil, err
				}
				if opts.KMSKeyID == "" { // server-side encryption under the sealing key by default
					opts.KMSKeyID, _ = lookup(config.EnvKMSKeyID)
				}
				return s3store.New(ctx, u, opts)
			},
		},
		KMS: func(ctx context.Context, keyID string) (seal.Sealer, error) {
			k, err := awskms.New(ctx, keyID, awskms.Options{})
			if err != nil {
				return nil, err
			}
			return awskms.Sealer(k, nil), nil
		},
	}
}
