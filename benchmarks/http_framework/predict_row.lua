-- One row for POST /predict?model=reference, as a list of 32 values in feature order.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local values = {}
for i = 1, 32 do values[i] = string.format("%.4f", (i * 0.37) % 3 - 1.5) end
wrk.body = "[" .. table.concat(values, ",") .. "]"
