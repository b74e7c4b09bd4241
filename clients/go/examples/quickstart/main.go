// Command quickstart is a service's whole use of sessiond, importing the client by its
// module path: log in, check the session, verify the access token locally, refresh, log
// out. Run it against a server: SESSIOND_ADDR=127.0.0.1:50051 go run ./examples/quickstart
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/sessiond/sessiond/clients/go/sessiond"
)

func main() {
	addr := os.Getenv("SESSIOND_ADDR")
	if addr == "" {
		addr = "127.0.0.1:50051"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, err := sessiond.Dial(addr)
	if err != nil {
		log.Fatalf("dial %s: %v", addr, err)
	}
	defer client.Close()

	started, err := client.Start(ctx, "quickstart-user", sessiond.StartOptions{
		Attributes: map[string]string{"role": "reader"},
	})
	check("Start", err)
	me, err := client.Whoami(ctx, started.SessionToken)
	check("Whoami", err)
	claims, err := sessiond.NewVerifier(client, "default").Verify(ctx, started.AccessToken)
	check("Verify", err)
	next, err := client.Refresh(ctx, started.RefreshToken, sessiond.RefreshOptions{})
	check("Refresh", err)
	ended, err := client.Logout(ctx, sessiond.LogoutOptions{SessionToken: next.SessionToken})
	check("Logout", err)
	if _, err := client.Whoami(ctx, next.SessionToken); sessiond.CodeOf(err) != codes.Unauthenticated {
		log.Fatalf("a logged-out session answers Whoami with %v, not Unauthenticated", err)
	}
	fmt.Printf("quickstart: ok (session %s, token for %s, %d revoked)\n",
		me.Session.SessionId, claims.Subject, ended.RevokedCount)
}

func check(call string, err error) {
	if err != nil {
		log.Fatalf("%s: %v", call, err)
	}
}
