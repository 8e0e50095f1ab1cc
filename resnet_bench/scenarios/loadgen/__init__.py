"""MLPerf LoadGen scenarios over any of our backends (the official bindings, ``mlperf_loadgen``).

LoadGen decides when each query arrives and reads every latency off its own clock, from the
time the query was *scheduled*: a slow stretch delays the queries behind it, and they count it
(no coordinated omission). The pieces: ``settings`` (the scenario, load and duration, as
LoadGen's TestSettings), ``sut`` (the system under test over one loaded backend: inline or
through lanes, and one LoadGen run), ``search`` (the Server peak search), ``log`` (reading the
result back from LoadGen's own log), ``cell`` (every scenario on one loaded instance, and the
``resnet-bench loadgen`` cell as rows) and ``overhead`` (LoadGen's own cost per query).
"""
