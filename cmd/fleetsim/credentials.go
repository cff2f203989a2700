package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/lifeline-ems/lifeline/telemetry/sim"
)

// credentials returns how the simulated terminals log in to the broker:
// from a file of unit passwords, or by asking lifelined to issue them
// (--provision), or not at all (an open broker).
func credentials(ctx context.Context, file, provision, adminUser string, w sim.World) (func(unit string) (string, string), error) {
	if file != "" && provision != "" {
		return nil, errors.New("--credentials and --provision: give one")
	}
	var passwords map[string]string
	switch {
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("--credentials: %w", err)
		}
		if err := json.Unmarshal(b, &passwords); err != nil {
			return nil, fmt.Errorf("--credentials %s: want a JSON object of unit id to password: %w", file, err)
		}
	case provision != "":
		var err error
		if passwords, err = provisionUnits(ctx, strings.TrimRight(provision, "/"), adminUser, w); err != nil {
			return nil, fmt.Errorf("--provision: %w", err)
		}
	default:
		return nil, nil
	}
	for _, u := range w.Units {
		if passwords[u.ID] == "" {
			return nil, fmt.Errorf("no password for unit %s", u.ID)
		}
	}
	return func(unit string) (string, string) { return unit, passwords[unit] }, nil
}

// provisionUnits signs in to lifelined and issues credentials for every
// simulated unit (POST /api/v1/units/{id}/credentials).
func provisionUnits(ctx context.Context, base, user string, w sim.World) (map[string]string, error) {
	password := os.Getenv("LIFELINE_ADMIN_PASSWORD")
	if password == "" {
		return nil, errors.New("set LIFELINE_ADMIN_PASSWORD to the password of " + user)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	call := func(method, path, token string, in, out any) error {
		var body bytes.Buffer
		if in != nil {
			_ = json.NewEncoder(&body).Encode(in)
		}
		req, err := http.NewRequestWithContext(ctx, method, base+path, &body)
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			var e struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&e)
			return fmt.Errorf("%s %s: %d %s: %s", method, path, resp.StatusCode, e.Error.Code, e.Error.Message)
		}
		return json.NewDecoder(resp.Body).Decode(out)
	}
	var session struct{ Token string }
	if err := call("POST", "/api/v1/sessions", "", map[string]string{"username": user, "password": password}, &session); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, u := range w.Units {
		var c struct{ Password string }
		if err := call("POST", "/api/v1/units/"+u.ID+"/credentials", session.Token, nil, &c); err != nil {
			return nil, err
		}
		out[u.ID] = c.Password
	}
	return out, nil
}
