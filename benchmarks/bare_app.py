"""The baseline: a bare Flask JSON endpoint, served exactly like the app."""
from flask import Flask, jsonify, request

app = Flask(__name__)


@app.post("/json")
def echo():
    """Parse the JSON body and answer a small JSON object, as the runtime endpoint does."""
    body = request.get_json()
    return jsonify({"conversation_id": body.get("conversation_id"), "ok": True}), 201
