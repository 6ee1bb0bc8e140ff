-- One-row OIP JSON infer request (1x32 FP32), as wrk's request for every call.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local values = {}
for i = 1, 32 do values[i] = string.format("%.4f", (i * 0.37) % 3 - 1.5) end
wrk.body = '{"inputs":[{"name":"input","shape":[1,32],"datatype":"FP32","data":[' ..
  table.concat(values, ",") .. ']}]}'
