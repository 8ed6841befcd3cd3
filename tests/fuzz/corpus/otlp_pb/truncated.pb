
½


service.name

frontendñ

io.clew.http1.0