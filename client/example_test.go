package client_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/holocron-run/holocron/client"
	"github.com/holocron-run/holocron/protocol"
)

// A chat client that survives node failures: give it every node, read its
// events, and use its methods; reconnecting, rejoining and resuming happen
// inside.
func Example() {
	ctx := context.Background()
	nodes := []string{"127.0.0.1:8081", "127.0.0.1:8082", "127.0.0.1:8083"}
	c, err := client.DialChat(ctx, nodes, client.Options{Token: os.Getenv("HOLOCRON_TOKEN")})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close(ctx)

	go func() {
		for ev := range c.Events() {
			switch ev := ev.(type) {
			case *client.NewMessage: // every message once, in order
				fmt.Printf("%s: %s\n", ev.Message.SenderName, ev.Message.Content)
			case *client.UserJoined:
				fmt.Printf("(%s is here)\n", ev.PlayerName)
			case *client.HistoryTruncated:
				fmt.Println("(some messages were too old to recover)")
			case *client.Disconnected:
				if !ev.Retrying {
					fmt.Println("disconnected for good:", ev.Err)
				}
			case *client.Error:
				fmt.Println("server error:", ev)
			}
		}
	}()

	if _, err := c.JoinRoom(ctx, "general", "p1", "Alice"); client.IsCode(err, protocol.CodeRoomNotFound) {
		if _, err := c.CreateRoom(ctx, client.NewChatRoom{RoomID: "general", Name: "General"}); err != nil {
			log.Fatal(err)
		}
		_, err = c.JoinRoom(ctx, "general", "p1", "Alice")
		if err != nil {
			log.Fatal(err)
		}
	} else if err != nil {
		log.Fatal(err)
	}
	msg, err := c.SendMessage(ctx, "general", "hello")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("stored as", msg.ID)
}

// A game client: requests return the server's answer or a *client.Error;
// the room's frames, including the client's own, arrive as events.
func ExampleGameClient() {
	ctx := context.Background()
	g, err := client.DialGame(ctx, []string{"127.0.0.1:8081"}, client.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close(ctx)
	go func() {
		for ev := range g.Events() {
			switch ev := ev.(type) {
			case *client.ScoreUpdated:
				fmt.Printf("%s has %v\n", ev.PlayerID, ev.Score)
			case *client.GameRejoined: // back after a reconnect: the state now
				fmt.Println("room is", ev.Room.Status)
			case *client.GameEnded:
				fmt.Println("game over:", ev.Reason, ev.FinalScores)
			}
		}
	}()
	if _, err := g.JoinRoom(ctx, "quiz", "p1", "Alice"); err != nil {
		log.Fatal(err)
	}
	if err := g.StartGame(ctx, "quiz"); client.IsCode(err, protocol.CodeNotEnoughPlayers) {
		fmt.Println("waiting for a second player")
	}
}
