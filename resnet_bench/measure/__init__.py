"""Measurement: the one timing function every figure goes through, with the table of stop rules
(``timing``); why a measured cell is not a figure to quote, as codes with a message
(``validity``); what the machine did during a cell, host memory and NVML on a GPU
(``telemetry``); and the roofs a cell's FLOP/s are divided by, the fastest matrix product
(and 3x3 convolution) of each precision measured in the same run on the same threads
(``roofs``, which sits a layer higher: it runs the runtimes)."""
