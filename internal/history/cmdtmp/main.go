package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/holocron-run/holocron/internal/history"
)

func main() {
	f, _ := os.Open(os.Args[1])
	sc := bufio.NewScanner(f)
	byKey := map[string][]porcupine.Operation{}
	for sc.Scan() {
		var o struct {
			Client       int
			Key          string
			Write        bool
			Value        int64
			Call, Return int64
		}
		json.Unmarshal(sc.Bytes(), &o)
		ret := o.Return
		if ret < 0 {
			ret = math.MaxInt64
		}
		in := history.Input{Key: o.Key, Write: o.Write}
		var out history.Output
		if o.Write {
			in.Value = o.Value
		} else {
			out.Value = o.Value
		}
		byKey[o.Key] = append(byKey[o.Key], porcupine.Operation{ClientId: o.Client, Input: in, Call: o.Call, Output: out, Return: ret})
	}
	for k, ops := range byKey {
		res, info := porcupine.CheckOperationsVerbose(history.RegisterModel, ops, time.Minute)
		fmt.Println(k, len(ops), res)
		if res != porcupine.Illegal {
			continue
		}
		parts := info.PartialLinearizations()
		longest := 0
		var best []int
		for _, p := range parts[0] {
			if len(p) > longest {
				longest, best = len(p), p
			}
		}
		in := map[int]bool{}
		for _, i := range best {
			in[i] = true
		}
		// ops by call time not in the longest linearization: the first few
		idx := make([]int, len(ops))
		for i := range idx {
			idx[i] = i
		}
		sort.Slice(idx, func(a, b int) bool { return ops[idx[a]].Call < ops[idx[b]].Call })
		last := best[len(best)-1]
		fmt.Println("longest partial linearization", longest, "of", len(ops), "last op", ops[last])
		n := 0
		for _, i := range idx {
			if !in[i] && ops[i].Return != math.MaxInt64 {
				fmt.Printf("not linearized: %+v\n", ops[i])
				n++
				if n > 6 {
					break
				}
			}
		}
		// the linearization's last 8 ops
		for _, i := range best[max(0, len(best)-8):] {
			fmt.Printf("lin: %+v\n", ops[i])
		}
	}
}
