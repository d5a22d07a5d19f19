package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"mqstack/auth"
	"mqstack/configs"
)

// grantFlags collects repeated --grant / --deny OP:GLOB flags.
type grantFlags []auth.GrantEntry

func (g *grantFlags) String() string { return "" }

func (g *grantFlags) Set(s string) error {
	e, err := auth.ParseGrantSpec(s)
	if err != nil {
		return err
	}
	*g = append(*g, e)
	return nil
}

// cmdToken mints a development token with the stack's key: the configured
// auth.hmac_secret(_file), else the development secret `mqstack up` keeps in
// the data directory. It prints only the token. The token is checked with
// the same policy the proxy applies (role, allowed roles, audience, lifetime)
// before it is printed; whether its role is a superuser only the database
// knows, so just the literal "postgres" is refused here unless
// auth.allow_superuser_roles is set (the proxy refuses the others).
func cmdToken(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("token", stderr)
	path := fs.String("config", "", "config file (default $MQSTACK_CONFIG)")
	dataDir := fs.String("data-dir", "", "data directory holding the development secret (default ./.mqstack, or data_dir from the config)")
	role := fs.String("role", "", "database role (default auth.default_role, else postgres.default_role)")
	var grants, denies grantFlags
	fs.Var(&grants, "grant", "queue grant OP:GLOB, repeatable (e.g. send:orders_*, publish:orders.#); none: a token limited only by the role's privileges")
	fs.Var(&denies, "deny", "queue deny OP:GLOB, repeatable; needs at least one --grant")
	sub := fs.String("sub", "mqstack-dev", "subject (sub claim)")
	ttl := fs.Duration("ttl", time.Hour, "lifetime")
	aud := fs.String("aud", "", "audience (default auth.audience)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	v, err := loadConfig(*path, *dataDir)
	if err != nil {
		return err
	}
	if len(denies) > 0 && len(grants) == 0 {
		return &usageError{"--deny needs at least one --grant: a token with grants may do only what they allow"}
	}
	if *ttl <= 0 {
		return &usageError{"--ttl must be positive"}
	}

	ac := v.EmbeddedAuth()
	secret, err := auth.ConfiguredSecret(ac)
	if err != nil {
		return err
	}
	if secret == nil {
		if ac.HasKey() {
			return &configs.Error{Msg: "mqstack token signs with an HMAC secret, and auth configures only public keys: set auth.hmac_secret or auth.hmac_secret_file, or have your identity provider issue the token"}
		}
		secret, err = auth.ReadDevSecret(v.DataDir)
		if errors.Is(err, os.ErrNotExist) {
			return &configs.Error{Msg: fmt.Sprintf("no signing key: %s does not exist; run `mqstack up` first (it creates the development secret) or configure auth.hmac_secret", auth.DevSecretPath(v.DataDir))}
		}
		if err != nil {
			return err
		}
		ac.HMACSecretFile = auth.DevSecretPath(v.DataDir)
	}

	r := *role
	if r == "" {
		r = ac.DefaultRole
	}
	if r == "" {
		return &usageError{"no role: pass --role (auth.allowed_roles leaves out postgres.default_role, and auth.default_role is not set)"}
	}
	if r == "postgres" && !ac.AllowSuperuserRoles {
		return &usageError{`role "postgres" is a superuser: the proxy refuses it unless auth.allow_superuser_roles is set`}
	}
	audience := ac.Audience
	if *aud != "" {
		audience = *aud
	}
	tok, err := auth.Mint(secret, auth.MintOptions{
		Role:      r,
		RoleClaim: ac.RoleClaim,
		Subject:   *sub,
		Audience:  audience,
		Issuer:    ac.Issuer,
		TTL:       *ttl,
		Grants:    grants,
		Deny:      denies,
	})
	if err != nil {
		return &usageError{err.Error()}
	}

	// Verify it as the stack would, so a token that would be refused is not
	// printed.
	ac.CacheSize = 0
	verifier, err := auth.NewVerifier(ac, nil)
	if err != nil {
		return err
	}
	if _, err := verifier.Verify(tok); err != nil {
		return &usageError{"the stack would refuse this token: " + strings.TrimSpace(err.Error())}
	}
	fmt.Fprintln(stdout, tok)
	return nil
}
