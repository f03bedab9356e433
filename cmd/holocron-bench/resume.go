package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/gorilla/websocket"
)

// runResume measures how long a client that missed -missed messages takes
// to have them all after it rejoins with `since`, -repeat times: it closes
// its socket, a sender stores the messages (each acknowledged), then it
// dials again and joins with since = the last message id it had, paging on
// with get_history after= while the resume says hasMore.
func runResume(ctx context.Context, b *bench) error {
	cfg := b.cfg
	room := chatRoom{ID: "resume-" + runID(), Lobby: "main"}
	if err := createChatRoom(ctx, b, room, 50); err != nil {
		return fmt.Errorf("create room: %w", err)
	}
	dialer := newWSDialer(cfg.SourceAddrs, 64<<10, 4<<10)
	path := room.path() + "/websocket"
	sender, err := dialer.Dial(ctx, b.fleet.pick(0).URL, path)
	if err != nil {
		return fmt.Errorf("sender: %w", err)
	}
	defer sender.Close()
	srd := &frameReader{c: sender}
	if err := sender.WriteMessage(websocket.TextMessage, appendJoinRoom(nil, room.ID, "sender", "", false)); err != nil {
		return fmt.Errorf("sender join: %w", err)
	}
	if _, err := awaitType(srd, "room_joined"); err != nil {
		return fmt.Errorf("sender join: %w", err)
	}
	// The victim joins, then learns the id of one message: its `since`.
	victimNode := b.fleet.pick(1)
	victim, err := dialer.Dial(ctx, victimNode.URL, path)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	vrd := &frameReader{c: victim}
	if err := victim.WriteMessage(websocket.TextMessage, appendJoinRoom(nil, room.ID, "client", "", false)); err != nil {
		victim.Close()
		return fmt.Errorf("client join: %w", err)
	}
	if _, err := awaitType(vrd, "room_joined"); err != nil {
		victim.Close()
		return fmt.Errorf("client join: %w", err)
	}
	if err := sendAcked(srd, room.ID, "sender", 1, 1, 1); err != nil {
		victim.Close()
		return fmt.Errorf("marker: %w", err)
	}
	f, err := awaitType(vrd, "new_message")
	if err != nil {
		victim.Close()
		return fmt.Errorf("marker: %w", err)
	}
	d, _ := parseNewMessage(f)
	since := string(d.ID)
	victim.Close()

	withDial, afterJoin := newHist(), newHist()
	var pages, frames int64
	for round := range cfg.Repeat {
		time.Sleep(200 * time.Millisecond) // the server handles the leave
		first := int64(round+1) * 1_000_000
		if err := sendAcked(srd, room.ID, "sender", first, cfg.Missed, 64); err != nil {
			return fmt.Errorf("round %d: send: %w", round+1, err)
		}
		t0 := time.Now()
		victim, err := dialer.Dial(ctx, victimNode.URL, path)
		if err != nil {
			return fmt.Errorf("round %d: dial: %w", round+1, err)
		}
		tJoin := time.Now()
		last, p, fr, err := resumeOnce(victim, room.ID, since, first, cfg.Missed)
		done := time.Now()
		victim.Close()
		if err != nil {
			return fmt.Errorf("round %d: %w", round+1, err)
		}
		record(withDial, done.Sub(t0))
		record(afterJoin, done.Sub(tJoin))
		pages += int64(p)
		frames += int64(fr)
		since = last
		b.log.Info("resumed", "round", round+1, "missed", cfg.Missed, "took", done.Sub(t0).Round(time.Microsecond))
	}
	b.res.Latencies["resume_incl_dial"] = summarize(withDial)
	b.res.Latencies["resume_after_connect"] = summarize(afterJoin)
	b.res.Figures["missed_per_round"] = float64(cfg.Missed)
	b.res.Figures["rounds"] = float64(cfg.Repeat)
	b.res.Figures["history_frames_per_round"] = round3(float64(frames) / float64(cfg.Repeat))
	b.res.Figures["get_history_pages_per_round"] = round3(float64(pages) / float64(cfg.Repeat))
	return nil
}

// sendAcked sends count messages (clientMsgIds first…) with up to window
// in flight and returns when all are acknowledged.
func sendAcked(rd *frameReader, room, player string, first int64, count, window int) error {
	sent, acked := 0, 0
	buf := make([]byte, 0, 256)
	for acked < count {
		for sent < count && sent-acked < window {
			buf = appendSendMessage(buf[:0], room, player, first+int64(sent), 0, 32)
			if err := rd.c.WriteMessage(websocket.TextMessage, buf); err != nil {
				return fmt.Errorf("send: %w", err)
			}
			sent++
		}
		rd.c.SetReadDeadline(time.Now().Add(30 * time.Second))
		f, err := rd.Read()
		if err != nil {
			return fmt.Errorf("read echo: %w", err)
		}
		switch string(frameType(f)) {
		case "new_message":
			if d, ok := parseNewMessage(f); ok && string(d.SenderID) == player && d.HasCMID {
				acked++
			}
		case "error":
			return fmt.Errorf("send refused: %s", f)
		}
	}
	rd.c.SetReadDeadline(time.Time{})
	return nil
}

// resumeOnce joins with since and reads until the count messages with
// clientMsgIds first… are all there. It returns the newest message id seen
// and how many get_history pages and history frames it took.
func resumeOnce(conn *websocket.Conn, room, since string, first int64, count int) (last string, pages, frames int, err error) {
	if err := conn.WriteMessage(websocket.TextMessage, appendJoinRoom(nil, room, "client", since, true)); err != nil {
		return "", 0, 0, fmt.Errorf("join: %w", err)
	}
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	rd := &frameReader{c: conn}
	have := make([]bool, count)
	got := 0
	last = since
	for got < count {
		f, err := rd.Read()
		if err != nil {
			return "", pages, frames, fmt.Errorf("read (%d of %d messages so far): %w", got, count, err)
		}
		switch string(frameType(f)) {
		case "message_history":
			frames++
			var h struct {
				Messages []struct {
					ID          string `json:"id"`
					SenderID    string `json:"senderId"`
					ClientMsgID string `json:"clientMsgId"`
				} `json:"messages"`
				HasMore   bool `json:"hasMore"`
				Truncated bool `json:"truncated"`
			}
			if err := json.Unmarshal(f, &h); err != nil {
				return "", pages, frames, fmt.Errorf("decode message_history: %w", err)
			}
			if h.Truncated {
				return "", pages, frames, errors.New("the resume is truncated: raise the server's -history-limit above -missed")
			}
			for _, m := range h.Messages {
				last = max(last, m.ID)
				if m.SenderID != "sender" {
					continue
				}
				if n, ok := leadingInt([]byte(m.ClientMsgID)); ok && n >= first && n < first+int64(count) && !have[n-first] {
					have[n-first] = true
					got++
				}
			}
			if got < count {
				if !h.HasMore {
					return "", pages, frames, fmt.Errorf("history ended with %d of %d messages", got, count)
				}
				pages++
				req := fmt.Sprintf(`{"type":"get_history","roomId":%q,"after":%q,"limit":1000}`, room, last)
				if err := conn.WriteMessage(websocket.TextMessage, []byte(req)); err != nil {
					return "", pages, frames, fmt.Errorf("get_history: %w", err)
				}
			}
		case "join_failed", "error":
			return "", pages, frames, fmt.Errorf("refused: %s", f)
		}
	}
	return last, pages, frames, nil
}
