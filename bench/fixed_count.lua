-- wrk script: stop after a fixed number of requests and report the count.
local limit = 20000
local sent = 0
local threads = {}

function setup(thread)
    table.insert(threads, thread)
end

function request()
    sent = sent + 1
    if sent > limit / 2 then
        wrk.thread:stop()
    end
    return wrk.format("GET", nil, {["traceparent"] =
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})
end

function done(summary, latency, requests)
    io.write(string.format("requests: %d\n", summary.requests))
end
