from qruntime import load_account

provider = load_account()

# Upload a new runtime program.
program_id = provider.runtime.upload_program(
    data='runtime/sample_program.py', 
    metadata='runtime/sample_program.json'
)
print(program_id)

# Print all available programs
provider.runtime.pprint_programs(refresh=True)

# Print just one program
print(provider.runtime.program(program_id='sample-program', refresh=True))

# Delete a program
provider.runtime.delete_program(program_id='id-to-delete')

# Execute a program

def interim_result_callback(job_id, interim_result):
    print(interim_result)

runtime_inputs = {
    "iterations": 2
}
options = {'backend_name': 'fake_montreal'}
job = provider.runtime.run(program_id="sample-program",
                           options=options,
                           inputs=runtime_inputs,
                           callback=interim_result_callback
                          )

# See job status
print(job.status())

# Get results
result = job.result()

# Print the result (the one line not in the seed, which fetched it without printing it)
print(result)
