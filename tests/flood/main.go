// tp-flood: one LiveKit participant that sends data packets at a set rate, for the flood
// tests (tests/integration/test_floods.py). A Python participant reaches about 1,000
// packets a second (the SDK's per-call work); this reaches 10,000.
//
//	tp-flood -url ws://host:7880 -token JWT [-rate 10000] [-seconds 3] [-topic T] [-to identity] [-hold]
//
// It prints {"sent", "failed", "seconds"} as JSON when done.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"time"

	lksdk "github.com/livekit/server-sdk-go/v2"
)

func main() {
	url := flag.String("url", "", "")
	token := flag.String("token", "", "")
	rate := flag.Int("rate", 10000, "")
	seconds := flag.Float64("seconds", 3, "")
	topic := flag.String("topic", "lk-chat-topic", "")
	to := flag.String("to", "", "the one participant to send to (default: everyone)")
	hold := flag.Bool("hold", false, "once joined, print \"joined\" and wait for a line on stdin")
	flag.Parse()
	room, err := lksdk.ConnectToRoomWithToken(*url, *token, &lksdk.RoomCallback{}, lksdk.WithAutoSubscribe(false))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if *hold {
		// The caller starts the flood once the room knows this participant: packets that
		// overtake their sender's arrival are dropped unread by any receiver.
		fmt.Println("joined")
		if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	payload := []byte(`{"id":"flood","message":"flood","timestamp":0}`)
	options := []lksdk.DataPublishOption{lksdk.WithDataPublishReliable(true), lksdk.WithDataPublishTopic(*topic)}
	if *to != "" {
		options = append(options, lksdk.WithDataPublishDestination([]string{*to}))
	}
	interval := time.Second / time.Duration(*rate)
	start := time.Now()
	deadline := start.Add(time.Duration(*seconds * float64(time.Second)))
	sent, failed := 0, 0
	for time.Now().Before(deadline) {
		if d := time.Until(start.Add(time.Duration(sent+failed) * interval)); d > 0 {
			time.Sleep(d)
		}
		if err := room.LocalParticipant.PublishDataPacket(lksdk.UserData(payload), options...); err != nil {
			failed++
		} else {
			sent++
		}
	}
	fmt.Printf("{\"sent\": %d, \"failed\": %d, \"seconds\": %.3f}\n", sent, failed, time.Since(start).Seconds())
	room.Disconnect()
}
