#!/usr/bin/python3
"""The course's original date-time service, as a reference: Flask serving the same
string as peerdex-clock. Usage: flask_clock.py PORT"""

import sys
import time

from flask import Flask, Response

app = Flask(__name__)


@app.route("/datetime")
def datetime():
    return Response(time.strftime("%d/%m/%Y %H:%M:%S"), mimetype="text/plain")


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(sys.argv[1]), threaded=True)
